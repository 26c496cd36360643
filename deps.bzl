"""Repositories surge needs. A consuming WORKSPACE declares @surge, then calls surge_dependencies().

    local_repository(name = "surge", path = "/path/to/surge")
    load("@surge//:deps.bzl", "surge_dependencies")
    surge_dependencies()
"""

def _copied_directory_impl(ctx):
    # The directory named by `source` (a sibling of the marker file) becomes this repository.
    source = ctx.path(ctx.attr.marker).dirname.get_child(ctx.attr.directory)
    result = ctx.execute(["cp", "-R", str(source) + "/.", "."])
    if result.return_code != 0:
        fail("could not copy %s: %s" % (source, result.stderr))

_copied_directory = repository_rule(
    implementation = _copied_directory_impl,
    attrs = {
        "marker": attr.label(allow_single_file = True),
        "directory": attr.string(),
    },
    local = True,
)

def surge_dependencies():
    """Declares what surge's BUILD files load, unless the workspace already has it.

    @surge_system: Debian's liburing, abseil, GoogleTest and Google Benchmark under /usr.
    @rules_cc, @rules_java, @remote_coverage_tools: the offline stand-ins Bazel 4.2.3's own tools load.
    """
    existing = native.existing_rules()
    if "surge_system" not in existing:
        native.new_local_repository(
            name = "surge_system",
            path = "/usr",
            build_file = str(Label("//third_party:system.BUILD")),
        )
    for name in ["rules_cc", "rules_java", "remote_coverage_tools"]:
        if name not in existing:
            _copied_directory(
                name = name,
                marker = Label("//third_party:BUILD.bazel"),
                directory = name,
            )
