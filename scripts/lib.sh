# Shared by scripts/test.sh and the benchmark scripts (source it from the repository root).

# make_venv DIR REQUIREMENTS: a Python venv in DIR with REQUIREMENTS installed (pip skips what
# is already there).
make_venv() {
    [ -x "$1/bin/python" ] || python3 -m venv "$1"
    "$1/bin/pip" install --quiet --disable-pip-version-check -r "$2"
}

# The runtime's three builds, which must compute the same bits: the default one (x86-64
# baseline, AVX kernels picked at run time), SSE2 only, and built for this CPU. Each is a cargo
# command with its own target folder; BUILD_DIRS are their release folders under target/.
SSE2_CARGO=(env CARGO_TARGET_DIR=target/sse2 cargo)
NATIVE_CARGO=(env RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR=target/native cargo)
BUILD_DIRS=(release sse2/release native/release)

# build_score_vs_reference: the scoring driver of benches/ in the three builds.
build_score_vs_reference() {
    cargo build --quiet --release -p mlet-benches --bin score_vs_reference
    "${SSE2_CARGO[@]}" build --quiet --release -p mlet-benches --no-default-features --bin score_vs_reference
    "${NATIVE_CARGO[@]}" build --quiet --release -p mlet-benches --bin score_vs_reference
}
