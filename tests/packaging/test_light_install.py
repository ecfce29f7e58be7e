"""A light install (``pip install swarmfuse``, no extras) runs the ledger side: the engine, the chaincode
server, the Gateway client and the network CLI import without NumPy, ONNX Runtime, Pillow or PyTorch."""

import subprocess
import sys
import textwrap

ML_MODULES = ("numpy", "onnxruntime", "PIL", "torch", "torchvision", "onnx", "sklearn", "matplotlib")

BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {ML_MODULES!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    sys.meta_path.insert(0, Block())
""")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True, text=True, cwd="/", check=False)


def test_ledger_side_imports_without_the_ml_stack() -> None:
    done = _run(textwrap.dedent("""
        import swarmfuse.network.embedded.engine, swarmfuse.network.tasks, swarmfuse.chaincode.app
        import swarmfuse.chaincode.__main__, swarmfuse.client.gateway
    """))
    assert done.returncode == 0, done.stderr


def test_cli_names_the_missing_extra() -> None:
    done = _run("import sys; sys.argv = ['swarmfuse', 'network', '--help']; from swarmfuse.cli import main; main()")
    assert done.returncode == 0, done.stderr
    refused = _run("import sys; sys.argv = ['swarmfuse', 'fuse', 'evaluate', '--regimes', 'a']; from swarmfuse.cli import main; main()")
    assert refused.returncode == 1
    assert "pip install 'swarmfuse[ml]'" in refused.stderr
