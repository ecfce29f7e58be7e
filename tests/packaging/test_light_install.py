"""A light install (``pip install swarmfuse``, no extras) runs the ledger side: the engine, the chaincode
server, the Gateway client and the network CLI import without NumPy, ONNX Runtime, Pillow or PyTorch."""

from python_process import run_python

ML_MODULES = ("numpy", "onnxruntime", "PIL", "torch", "torchvision", "onnx", "sklearn", "matplotlib")


def test_ledger_side_imports_without_the_ml_stack() -> None:
    done = run_python("""
        import swarmfuse.network.embedded.engine, swarmfuse.network.tasks, swarmfuse.chaincode.app
        import swarmfuse.chaincode.__main__, swarmfuse.client.gateway
    """, blocked=ML_MODULES)
    assert done.returncode == 0, done.stderr


def test_cli_names_the_missing_extra() -> None:
    done = run_python("import sys; sys.argv = ['swarmfuse', 'network', '--help']; from swarmfuse.cli import main; main()",
                      blocked=ML_MODULES)
    assert done.returncode == 0, done.stderr
    refused = run_python("import sys; sys.argv = ['swarmfuse', 'fuse', 'evaluate', '--regimes', 'a']; "
                         "from swarmfuse.cli import main; main()", blocked=ML_MODULES)
    assert refused.returncode == 1
    assert "pip install 'swarmfuse[ml]'" in refused.stderr
