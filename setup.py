"""Which packages the distribution holds; everything else is declared in pyproject.toml.

The repository keeps `migrations/` and `policies/` at its top level, where operators and
contributors expect them. The wheel carries them inside the `app` package, as
`app/_shipped/migrations` and `app/_shipped/policies` (package-dir maps the folders there), so an
installed CaseBridge finds them next to its code (app/shipped.py) and never reads a checkout.
pyproject.toml cannot list found packages and mapped ones together, hence this file.
"""

from setuptools import find_namespace_packages, setup

SHIPPED = ("migrations", "policies")


def shipped_packages() -> list[str]:
    """Each shipped folder and its subfolders (listed, so setuptools does not warn that they hold only data)."""
    found = []
    for name in SHIPPED:
        found.append(f"app._shipped.{name}")
        found += [f"app._shipped.{name}.{sub}" for sub in find_namespace_packages(name, exclude=["*__pycache__*"])]
    return found


setup(
    packages=[*find_namespace_packages(include=["app", "app.*"], exclude=["*__pycache__*"]), *shipped_packages()],
    package_dir={f"app._shipped.{name}": name for name in SHIPPED},
)
