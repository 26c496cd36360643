"""Repositories surge needs. A consuming WORKSPACE calls surge_dependencies() after declaring @surge."""

def surge_dependencies():
    """Declares @surge_system: Debian's liburing, abseil, GoogleTest and Google Benchmark under /usr."""
    if "surge_system" not in native.existing_rules():
        native.new_local_repository(
            name = "surge_system",
            path = "/usr",
            build_file = str(Label("//third_party:system.BUILD")),
        )
