"""Build build/lambda.zip, the admin endpoint's deployment package for AWS Lambda (`make lambda-zip`).

The runtime is the one deploy/endpoint.yaml names (Linux x86_64, CPython 3.X): its dependencies come as wheels
for that platform (``pip install --platform manylinux2014_x86_64 --only-binary=:all:``), at the versions
installed in the project's environment, the ones the tests ran with. Only what
``mlspace_s3magic.admin.aws_lambda`` needs at run time goes in: FastAPI (and Starlette, Pydantic), Mangum,
httpx, and boto3 - bundled although the runtime carries one, because the runtime's copy changes under a
deployed function without notice and ours is the one tested. The package itself is copied from the sources
without its Jupyter parts (the JupyterLab extension, the server extension, the magics, the sandbox), so no
JupyterLab build runs and no Jupyter package is needed.

Before zipping, the handler module is imported from the copied sources (with this environment's
dependencies, which match the bundled versions; the bundled compiled wheels are for the Lambda runtime's
Python, not necessarily this one): every third-party module it imports must be in the package, and no
Jupyter module may be imported. The zip is reproducible (sorted entries, fixed timestamps) and checked
against Lambda's limits (50 MB zipped for a direct upload, 250 MB unzipped).

Usage: python deploy/build_lambda_zip.py [--out build/lambda.zip] [--keep-staging]
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import importlib.metadata
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "endpoint.yaml"
PACKAGE = "mlspace_s3magic"
HANDLER_MODULE = "mlspace_s3magic.admin.aws_lambda"
PLATFORM = "manylinux2014_x86_64"
# The endpoint's run-time dependencies; pinned below to the versions installed here.
DEPENDENCIES = ("fastapi", "mangum", "pydantic", "httpx", "boto3")
# Parts of the package that only a notebook or a developer uses.
EXCLUDED_SUBPACKAGES = ("labextension", "notebook", "server", "sandbox")
# Modules that must never be in the package or imported by the handler.
FORBIDDEN = (
    "jupyter_server",
    "jupyterlab",
    "jupyter_core",
    "IPython",
    "ipykernel",
    "ipywidgets",
    "tornado",
    "moto",
)
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def runtime_python() -> str:
    """The Python version of the function's runtime, read from the template (``Runtime: python3.X``)."""
    found = re.findall(r"^\s*Runtime:\s*python(3\.\d+)\s*$", TEMPLATE.read_text(), re.MULTILINE)
    if len(set(found)) != 1:
        raise SystemExit(f"{TEMPLATE} must name exactly one python3.X runtime, found {found or 'none'}")
    return str(found[0])


PYTHON_VERSION = runtime_python()


def pinned_dependencies() -> list[str]:
    pins = []
    for name in DEPENDENCIES:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            raise SystemExit(
                f"{name} is not installed here; run this with the project's .venv/bin/python"
            ) from None
    return pins


def install_dependencies(target: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # compile_for_runtime does it, when this Python is the runtime's
        "--platform",
        PLATFORM,
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--target",
        str(target),
        *pinned_dependencies(),
    ]
    print("$", " ".join(command[2:]), flush=True)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    # pip warns about each unreadable extra index on this machine; show only real trouble.
    noise = re.compile(r"^WARNING: Location '.*' is ignored")
    output = [line for line in (result.stdout + result.stderr).splitlines() if line and not noise.match(line)]
    if output:
        print("\n".join(output), file=sys.stderr)
    if result.returncode != 0:
        raise SystemExit(f"pip could not get the wheels for CPython {PYTHON_VERSION} on {PLATFORM}")
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: nothing runs them on Lambda


def copy_package(target: Path) -> None:
    source = ROOT / PACKAGE
    if not (source / "admin" / "aws_lambda.py").is_file():
        raise SystemExit(f"{source}/admin/aws_lambda.py is missing: there is no handler to package")
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc")

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(ignored(directory, names))
        if Path(directory) == source:
            skipped |= set(EXCLUDED_SUBPACKAGES)
        return skipped

    shutil.copytree(source, target / PACKAGE, ignore=ignore)


# Run in a fresh interpreter: only the standard library, the bundled distributions' top-level modules and the
# copied package may be imported (anything else fails as it would on Lambda, so optional imports such as
# httpx's command line fall back as they would there); the handler module must import, and no Jupyter module.
PROBE = """
import importlib.abc, importlib.machinery, json, sys, sysconfig
sources, allowed = sys.argv[1], set(json.loads(sys.argv[2])) | set(sys.stdlib_module_names)
standard = [sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib") + "/lib-dynload"]
refused = set()

class OnlyBundled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in allowed or top in sys.modules:
            return None
        if importlib.machinery.PathFinder.find_spec(top, standard) is not None:  # the interpreter's own
            allowed.add(top)
            return None
        refused.add(top)
        raise ModuleNotFoundError("No module named %r (not in the package)" % top, name=top)

sys.meta_path.insert(0, OnlyBundled())
sys.path.insert(0, sources)
import @MODULE@ as module
assert callable(module.handler), "the handler module has no handler"
assert module.__file__.startswith(sources), module.__file__
imported = sorted({name.partition(".")[0] for name in sys.modules})
print(json.dumps({"imported": imported, "refused": sorted(refused)}))
""".replace("@MODULE@", HANDLER_MODULE)


def check_imports(sources: Path, dependencies: Path) -> None:
    """Import the handler from the copied sources, allowing only what the package bundles."""
    bundled = {
        path.name.removesuffix(".py") for path in dependencies.iterdir() if not path.name.endswith("-info")
    }
    environment = {
        "PATH": os.environ.get("PATH", ""),
        # Enough configuration to import, and nowhere real to send a request.
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "package-check",
        "AWS_SECRET_ACCESS_KEY": "package-check",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "PYTHONDONTWRITEBYTECODE": "1",  # the package gets the runtime's bytecode or none
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(sources), json.dumps(sorted(bundled | {PACKAGE}))],
        capture_output=True,
        text=True,
        env=environment,
        cwd="/",
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"importing {HANDLER_MODULE} with only what the package bundles failed:\n{result.stderr}"
        )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if forbidden := sorted(set(report["imported"]) & set(FORBIDDEN)):
        raise SystemExit(f"{HANDLER_MODULE} imports {forbidden}: the endpoint must not need Jupyter or moto")
    if report["refused"]:
        print(f"optional imports left out, as on Lambda: {', '.join(report['refused'])}")


def compile_for_runtime(staging: Path) -> None:
    """Bytecode for the runtime, so that a cold start does not compile every module it imports (Lambda's
    code directory is read-only: nothing compiled there is kept). Only a Python of the runtime's version
    writes it; unchecked-hash files, because the zip's fixed timestamps are not the sources' own."""
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != PYTHON_VERSION:
        print(
            f"no bytecode in the package: this is Python {here}, the runtime is {PYTHON_VERSION} (run this "
            f"script in a Python {PYTHON_VERSION} environment to include it)"
        )
        return
    compiled = compileall.compile_dir(
        staging, quiet=1, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    if not compiled:
        raise SystemExit(f"compiling {staging} for Python {PYTHON_VERSION} failed")


def write_zip(staging: Path, out: Path) -> tuple[int, int]:
    files = sorted(path for path in staging.rglob("*") if path.is_file())
    out.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(staging).as_posix(), ZIP_DATE)
            info.external_attr = 0o644 << 16  # readable by the runtime's user
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data, compresslevel=9)
    return out.stat().st_size, unzipped


def check_contents(out: Path) -> None:
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
    tops = {name.split("/", 1)[0].removesuffix(".py") for name in names}
    if f"{HANDLER_MODULE.replace('.', '/')}.py" not in names:
        raise SystemExit(f"{out} lacks the handler module")
    if bad := sorted(tops & set(FORBIDDEN)):
        raise SystemExit(f"{out} contains {bad}")
    if bad := sorted(name for name in names if name.startswith(f"{PACKAGE}/labextension/")):
        raise SystemExit(f"{out} contains the JupyterLab extension's files, such as {bad[0]}")
    abi = f"cpython-{PYTHON_VERSION.replace('.', '')}-x86_64-linux-gnu.so"
    compiled = [name for name in names if name.endswith(".so")]
    if wrong := [name for name in compiled if "cpython-" in name and not name.endswith(abi)]:
        raise SystemExit(f"{out} has extension modules for another Python: {wrong[:3]}")


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda.zip")
    parser.add_argument("--keep-staging", action="store_true", help="leave build/lambda for inspection")
    args = parser.parse_args(argv)
    staging = ROOT / "build" / "lambda"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    sources = ROOT / "build" / "lambda-sources"
    shutil.rmtree(sources, ignore_errors=True)
    print(f"Packaging the admin endpoint for Lambda's python{PYTHON_VERSION} (x86_64)", flush=True)
    install_dependencies(staging)
    copy_package(sources)
    check_imports(sources, staging)
    shutil.copytree(sources / PACKAGE, staging / PACKAGE)
    shutil.rmtree(sources)
    compile_for_runtime(staging)
    zipped, unzipped = write_zip(staging, args.out)
    check_contents(args.out)
    if not args.keep_staging:
        shutil.rmtree(staging)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(
        f"{args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}: {megabytes(zipped)} "
        f"zipped (limit 50 MB), {megabytes(unzipped)} unzipped (limit 250 MB), sha256 {digest[:16]}"
    )
    if zipped > MAX_ZIPPED or unzipped > MAX_UNZIPPED:
        raise SystemExit("the package is over Lambda's limits")


if __name__ == "__main__":
    main()
