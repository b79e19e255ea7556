"""Sources/leetcode-claim/startup.order stays in step with the code: the linker places the functions it names at the
front of .text so that a cold start faults in few pages (BENCHMARKS.md), and it ignores names that no longer exist
without a word (--no-warn-symbol-ordering). So a rename or a new request path would quietly undo the layout; this
test notices, and scripts/startup-order.sh regenerates the file."""
import subprocess

from conftest import ROOT

ORDER = ROOT / "Sources" / "leetcode-claim" / "startup.order"
# The unstripped release binary scripts/build.sh leaves behind: the shipped one has the same layout, without names.
UNSTRIPPED = ROOT / ".build" / "release" / "leetcode-claim"
# A few names always drift (specializations, thunks); a tenth means the request path changed under the file.
MISSING_AT_MOST = 0.10


def test_startup_order_names_the_functions_the_binary_has():
    assert UNSTRIPPED.is_file(), f"{UNSTRIPPED} is missing: run scripts/build.sh first"
    names = [line.strip() for line in ORDER.read_text().splitlines() if line.strip()]
    symbols = set(subprocess.run(["nm", "--format=posix", str(UNSTRIPPED)], capture_output=True, text=True,
                                 check=True).stdout.split())
    missing = [name for name in names if name not in symbols]
    print(f"startup.order: {len(names) - len(missing)} of {len(names)} names are in the binary")
    assert len(missing) <= MISSING_AT_MOST * len(names), (
        f"{len(missing)} of {len(names)} names in startup.order are no longer in the binary (first: "
        f"{missing[:5]}): regenerate it with scripts/startup-order.sh")
