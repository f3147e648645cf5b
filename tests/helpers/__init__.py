"""What the tests share besides fixtures: ``helpers.model`` (small stacks, targets, manifests),
``helpers.synchronic`` (source maps of a known field), ``helpers.workflow`` (Snakemake in a
subprocess) and ``helpers.listen_probe`` (a script the launcher test runs). No tests here.

``tests/conftest.py`` puts ``tests/`` on ``sys.path``, so every test imports these as
``helpers.<name>`` whatever its folder and pytest's import mode.
"""

from pathlib import Path

#: The folder that holds ``helpers``: what a subprocess needs on PYTHONPATH to import them.
TESTS = Path(__file__).resolve().parents[1]
#: The repository's root.
REPO = TESTS.parent
