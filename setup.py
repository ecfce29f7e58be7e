"""Package layout: one distribution, ``swarmfuse``, whose subpackages live in top-level folders.

``pyproject.toml`` holds the metadata; this file only maps ``swarmfuse.<concern>`` onto the folder of
that concern and discovers every package below it, so a new subpackage needs no packaging edit.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "swarmfuse": "swarmfuse",
    "swarmfuse.chaincode": "chaincode",
    "swarmfuse.client": "client",
    "swarmfuse.network": "network",
    "swarmfuse.extractors": "extractors",
}


def _packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        for init in sorted(Path(folder).rglob("__init__.py")):
            rel = init.parent.relative_to(folder).parts
            found.append(".".join((name, *rel)))
    return found


if __name__ == "__main__":
    setup(
        package_dir=ROOTS,
        packages=_packages(),
        package_data={"": ["*.sh", "*.yaml", "*.json", "*.html", "*.js", "*.css", "*.env", "bin/*",
                          "templates/*.html", "static/*.css", "static/*.js"]},
    )
