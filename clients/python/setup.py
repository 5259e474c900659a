"""Builds the package with its gRPC stubs generated from the repository's proto/ files.

The generated modules land inside the `tradepact` package itself (`tradepact.data.v1`,
`tradepact.negotiation.v1`), where the protos' own package names put them, so the stubs'
imports of each other work unchanged.
"""

import pathlib

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
# In the repository (pip installs a local directory in place), or a copy beside setup.py.
PROTO = next(p for p in (HERE.parents[1] / "proto", HERE / "proto") if p.is_dir())


def generate(out: pathlib.Path) -> None:
    from grpc_tools import protoc

    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    files = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    args = ["grpc_tools.protoc", f"-I{PROTO}", f"-I{well_known}",
            f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on " + " ".join(files))
    for package in {p.parent for p in out.rglob("*_pb2.py")}:
        while package != out and package.name != "tradepact":
            (package / "__init__.py").touch()
            package = package.parent


class BuildWithStubs(build_py):
    def run(self) -> None:
        super().run()
        generate(pathlib.Path(self.build_lib))


setup(cmdclass={"build_py": BuildWithStubs})
