"""Builds the package with the C side bundled: runs `make` for build/libflowturbo.so and build/flowturbo in the
repository this directory belongs to (nothing is rebuilt when they are current), then copies both into the package,
so the installed package needs neither the checkout nor a compiler. Environment: FLOWTURBO_BUILD=DIR takes them
from another build directory (make BUILD=DIR), FLOWTURBO_NO_MAKE=1 only copies."""
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

REPO = Path(__file__).resolve().parents[2]


class BuildWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        custom = os.environ.get("FLOWTURBO_BUILD")
        build = Path(custom).resolve() if custom else REPO / "build"
        lib, cli = build / "libflowturbo.so", build / "flowturbo"
        if not os.environ.get("FLOWTURBO_NO_MAKE"):
            if not (REPO / "Makefile").is_file():
                raise SystemExit(f"flowturbo: {REPO} is not the flowturbo repository (no Makefile); build there "
                                 "with `make` and set FLOWTURBO_BUILD, or install from the repository")
            env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
            targets = [f"BUILD={build}", str(lib), str(cli)] if custom else ["build/libflowturbo.so", "build/flowturbo"]
            subprocess.run(["make", "-C", str(REPO), *targets], check=True, env=env)
        for path in (lib, cli):
            if not path.is_file():
                raise SystemExit(f"flowturbo: {path} is missing: run `make` in {REPO} first")
        target = Path(self.build_lib) / "flowturbo"
        (target / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, target / "libflowturbo.so")
        shutil.copy2(cli, target / "bin" / "flowturbo")


class BinaryDistribution(Distribution):
    """The wheel holds a shared library: tag it for this platform, not py3-none-any."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
