import pytest


@pytest.fixture(scope="session")
def wand():
    # The real ImageMagick is the oracle; `make test` installs libmagickwand where missing,
    # so its absence is a broken set-up, not a reason to skip.
    try:
        import wand.image
    except ImportError as exc:
        pytest.fail(f"wand / libmagickwand missing ({exc}): run `make setup`")
    return wand.image
