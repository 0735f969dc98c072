"""UCN Viewer: dense correspondences with the Universal Correspondence Network."""

DIST_NAME = "ucn-viewer"


def package_version() -> str:
    """The installed distribution's version (importlib.metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DIST_NAME)
    except PackageNotFoundError:
        return "unknown (not installed; pip install . records the version)"
