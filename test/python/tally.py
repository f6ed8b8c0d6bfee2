"""The pass/fail count of a Python suite. Its last line, "NAME: N passed, M failed", is what
scripts/test.sh adds up and checks against test/suites.txt; the exit status is 1 when a check failed."""
import sys


class Tally:
    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, cond, what):
        """Counts one check; prints what failed. Returns cond, so a caller can stop early."""
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s" % what)
        return cond

    def finish(self):
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        sys.exit(1 if self.failed else 0)
