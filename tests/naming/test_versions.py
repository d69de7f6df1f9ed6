"""SemVer 2.0.0 versions and npm (node-semver) ranges.

The tables follow node-semver's documented semantics and the cases of its own
fixtures (range-include, range-exclude, range-parse, comparisons, invalid versions),
in strict mode; the properties check the module against references built here,
independently of its code.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import string
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webmodels.naming.versions import (
    Comparator,
    ModelName,
    ModelSpec,
    Version,
    VersionError,
    VersionRange,
)

MAX_SAFE = 2**53 - 1

# --- tables -------------------------------------------------------------------------

INCLUDE = [
    ("1.0.0 - 2.0.0", "1.2.3"),
    ("^1.2.3+build", "1.2.3"),
    ("^1.2.3+build", "1.3.0"),
    ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "1.2.3"),
    ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "1.2.3-pre.2"),
    ("1.2.3-pre+asdf - 2.4.3-pre+asdf", "2.4.3-alpha"),
    ("1.2.3+asdf - 2.4.3+asdf", "1.2.3"),
    ("1.0.0", "1.0.0"),
    ("1.0.0", "1.0.0+build"),
    (">=*", "0.2.4"),
    ("", "1.0.0"),
    ("*", "1.2.3"),
    ("*", "v1.2.3"),
    (">=1.0.0", "1.0.0"),
    (">=1.0.0", "1.0.1"),
    (">=1.0.0", "1.1.0"),
    (">1.0.0", "1.0.1"),
    (">1.0.0", "1.1.0"),
    ("<=2.0.0", "2.0.0"),
    ("<=2.0.0", "1.9999.9999"),
    ("<=2.0.0", "0.2.9"),
    ("<2.0.0", "1.9999.9999"),
    ("<2.0.0", "0.2.9"),
    (">= 1.0.0", "1.0.0"),
    (">=  1.0.0", "1.0.1"),
    (">=   1.0.0", "1.1.0"),
    ("> 1.0.0", "1.0.1"),
    (">  1.0.0", "1.1.0"),
    ("<=   2.0.0", "2.0.0"),
    ("<= 2.0.0", "1.9999.9999"),
    ("<=  2.0.0", "0.2.9"),
    ("<    2.0.0", "1.9999.9999"),
    ("<\t2.0.0", "0.2.9"),
    (">=0.1.97", "v0.1.97"),
    (">=0.1.97", "0.1.97"),
    ("0.1.20 || 1.2.4", "1.2.4"),
    (">=0.2.3 || <0.0.1", "0.0.0"),
    (">=0.2.3 || <0.0.1", "0.2.3"),
    (">=0.2.3 || <0.0.1", "0.2.4"),
    ("||", "1.3.4"),
    ("1.2.3 ||", "9.9.9"),
    ("2.x.x", "2.1.3"),
    ("1.2.x", "1.2.3"),
    ("1.2.x || 2.x", "2.1.3"),
    ("1.2.x || 2.x", "1.2.3"),
    ("x", "1.2.3"),
    ("X", "0.0.0"),
    ("2.*.*", "2.1.3"),
    ("1.2.*", "1.2.3"),
    ("1.2.* || 2.*", "2.1.3"),
    ("1.2.* || 2.*", "1.2.3"),
    ("2", "2.1.2"),
    ("2.3", "2.3.1"),
    ("~0.0.1", "0.0.1"),
    ("~0.0.1", "0.0.2"),
    ("~x", "0.0.9"),
    ("~2", "2.0.9"),
    ("~2.4", "2.4.0"),
    ("~2.4", "2.4.5"),
    ("~>3.2.1", "3.2.2"),
    ("~1", "1.2.3"),
    ("~>1", "1.2.3"),
    ("~> 1", "1.2.3"),
    ("~1.0", "1.0.2"),
    ("~ 1.0", "1.0.2"),
    ("~ 1.0.3", "1.0.12"),
    ("~0.2.3", "0.2.9"),
    ("~1.2.3-beta.2", "1.2.3-beta.4"),
    ("~1.2.3-beta.2", "1.2.9"),
    (">=1", "1.0.0"),
    (">= 1", "1.0.0"),
    ("<1.2", "1.1.1"),
    ("< 1.2", "1.1.1"),
    ("~v0.5.4-pre", "0.5.5"),
    ("~v0.5.4-pre", "0.5.4"),
    ("=0.7.x", "0.7.2"),
    ("<=0.7.x", "0.7.2"),
    (">=0.7.x", "0.7.2"),
    ("<=0.7.x", "0.6.2"),
    ("~1.2.1 >=1.2.3", "1.2.3"),
    ("~1.2.1 =1.2.3", "1.2.3"),
    ("~1.2.1 1.2.3", "1.2.3"),
    ("~1.2.1 >=1.2.3 1.2.3", "1.2.3"),
    ("~1.2.1 1.2.3 >=1.2.3", "1.2.3"),
    (">=1.2.1 1.2.3", "1.2.3"),
    ("1.2.3 >=1.2.1", "1.2.3"),
    (">=1.2.3 >=1.2.1", "1.2.3"),
    (">=1.2.1 >=1.2.3", "1.2.3"),
    (">=1.2", "1.2.8"),
    ("^1.2.3", "1.8.1"),
    ("^0.1.2", "0.1.2"),
    ("^0.1", "0.1.2"),
    ("^0.0.1", "0.0.1"),
    ("^0.2.3", "0.2.9"),
    ("^0.0.3", "0.0.3"),
    ("^1.2", "1.4.2"),
    ("^1.2 ^1", "1.4.2"),
    ("^1.2.3-alpha", "1.2.3-pre"),
    ("^1.2.0-alpha", "1.2.0-pre"),
    ("^0.0.1-alpha", "0.0.1-beta"),
    ("^0.0.1-alpha", "0.0.1"),
    ("^0.1.1-alpha", "0.1.1-beta"),
    ("^1.2.3-beta.2", "1.2.3-beta.10"),
    ("^1.2.3-beta.2", "1.9.0"),
    ("^0.0.x", "0.0.7"),
    ("^0.0", "0.0.7"),
    ("^1.x", "1.9.9"),
    ("^0.x", "0.9.9"),
    ("^x", "1.2.3"),
    ("x - 1.0.0", "0.9.7"),
    ("x - 1.x", "0.9.7"),
    ("1.0.0 - x", "1.9.7"),
    ("1.x - x", "1.9.7"),
    ("1.2.3 - 2.3", "2.3.9"),
    ("1.2 - 2.3.4", "1.2.0"),
    ("<=7.x", "7.9.9"),
    (">1", "2.0.0"),
    (">1.2", "1.3.0"),
    ("<1", "0.9.9"),
    ("=v1.2.3", "1.2.3"),
    ("^v1.2.3", "1.5.0"),
    ("^=1.2.3", "1.5.0"),
    ("~>=1.2", "1.2.5"),
    (">=0.0.0-0", "0.0.0-alpha"),
    ("1.2.3-beta", "1.2.3-beta+build"),
    ("9007199254740991.0.0", "9007199254740991.0.0"),
    ("1.x+build", "1.5.0"),
    ("^1.2+build.7", "1.5.0"),
    (">=1.x.x-alpha+build <2.x.x+build", "1.5.0"),
    ("1.2.3+b - 2+b", "2.9.9"),
]

INCLUDE_WITH_PRERELEASES = [  # matched only with include_prerelease=True
    ("2.x", "2.0.0-pre.0"),
    ("2.x", "2.1.0-pre.0"),
    ("1.1.x", "1.1.0-a"),
    ("1.1.x", "1.1.1-a"),
    ("*", "1.0.0-rc1"),
    ("*", "0.0.0-alpha"),
    ("", "0.0.0-0"),
    ("^1.0.0-0", "1.0.1-rc1"),
    ("^1.0.0-rc2", "1.0.1-rc1"),
    ("^1.0.0", "1.0.1-rc1"),
    ("^1.0.0", "1.1.0-rc1"),
    ("^1.2", "1.2.0-alpha"),
    ("^0.2", "0.2.0-alpha"),
    ("^1", "1.0.0-alpha"),
    ("~1.2", "1.2.0-rc"),
    ("~1.2.*", "1.2.0-rc"),
    ("~1", "1.0.0-rc"),
    ("~>0.3", "0.3.0-0"),
    ("1 - 2", "2.0.0-pre"),
    ("1 - 2", "1.0.0-pre"),
    ("1.0 - 2", "1.0.0-pre"),
    ("1.0.0 - 2.0.0", "1.0.0-pre"),
    ("=0.7.x", "0.7.0-asdf"),
    (">=0.7.x", "0.7.0-asdf"),
    ("<=0.7.x", "0.7.0-asdf"),
    (">1", "2.0.0-pre"),
    (">=1.0.0 <=1.1.0", "1.1.0-pre"),
    (">=1.0.0 <1.1.0", "1.1.0-pre"),
    ("~1.2.3", "1.2.4-rc.1"),
    ("<2.0.0", "1.5.0-beta"),
]

EXCLUDE = [
    ("1.0.0 - 2.0.0", "2.2.3"),
    ("1.2.3+asdf - 2.4.3+asdf", "1.2.3-pre.2"),
    ("1.2.3+asdf - 2.4.3+asdf", "2.4.3-alpha"),
    ("^1.2.3+build", "2.0.0"),
    ("^1.2.3+build", "1.2.0"),
    ("^1.2.3", "1.2.3-pre"),
    ("^1.2", "1.2.0-pre"),
    (">1.2", "1.3.0-beta"),
    ("<=1.2.3", "1.2.3-beta"),
    ("^1.2.3", "1.2.3-beta"),
    ("=0.7.x", "0.7.0-asdf"),
    (">=0.7.x", "0.7.0-asdf"),
    ("<=0.7.x", "0.7.0-asdf"),
    ("1.0.0", "1.0.1"),
    (">=1.0.0", "0.0.0"),
    (">=1.0.0", "0.0.1"),
    (">=1.0.0", "0.1.0"),
    (">1.0.0", "0.0.1"),
    (">1.0.0", "0.1.0"),
    ("<=2.0.0", "3.0.0"),
    ("<=2.0.0", "2.9999.9999"),
    ("<=2.0.0", "2.2.9"),
    ("<2.0.0", "2.9999.9999"),
    ("<2.0.0", "2.2.9"),
    (">=0.1.97", "v0.1.93"),
    (">=0.1.97", "0.1.93"),
    ("0.1.20 || 1.2.4", "1.2.3"),
    (">=0.2.3 || <0.0.1", "0.0.3"),
    (">=0.2.3 || <0.0.1", "0.2.2"),
    ("2.x.x", "1.1.3"),
    ("2.x.x", "3.1.3"),
    ("1.2.x", "1.3.3"),
    ("1.2.x || 2.x", "3.1.3"),
    ("1.2.x || 2.x", "1.1.3"),
    ("2.*.*", "1.1.3"),
    ("2.*.*", "3.1.3"),
    ("1.2.*", "1.3.3"),
    ("1.2.* || 2.*", "3.1.3"),
    ("1.2.* || 2.*", "1.1.3"),
    ("2", "1.1.2"),
    ("2.3", "2.4.1"),
    ("~0.0.1", "0.1.0-alpha"),
    ("~0.0.1", "0.1.0"),
    ("~2.4", "2.5.0"),
    ("~2.4", "2.3.9"),
    ("~>3.2.1", "3.3.2"),
    ("~>3.2.1", "3.2.0"),
    ("~1", "0.2.3"),
    ("~>1", "2.2.3"),
    ("~1.0", "1.1.0"),
    ("~0.2.3", "0.3.0"),
    ("~1.2.3-beta.2", "1.2.3-beta.1"),
    ("~1.2.3-beta.2", "1.2.4-beta.3"),
    ("<1", "1.0.0"),
    (">=1.2", "1.1.1"),
    ("~v0.5.4-beta", "0.5.4-alpha"),
    ("=0.7.x", "0.8.2"),
    (">=0.7.x", "0.6.2"),
    ("<0.7.x", "0.7.2"),
    ("<1.2.3", "1.2.3-beta"),
    ("=1.2.3", "1.2.3-beta"),
    (">1.2", "1.2.8"),
    (">1", "1.9.9"),
    ("<=1.2", "1.3.0"),
    ("^0.0.1", "0.0.2-alpha"),
    ("^0.0.1", "0.0.2"),
    ("^0.0.3", "0.0.4"),
    ("^0.2.3", "0.3.0"),
    ("^0.2.3", "0.2.2"),
    ("^1.2.3", "2.0.0-alpha"),
    ("^1.2.3", "1.2.2"),
    ("^1.2", "1.1.9"),
    ("^1.2.3-beta.2", "1.2.4-beta.3"),
    ("^1.2.3-beta.2", "1.2.3-beta.1"),
    ("^0.0.x", "0.1.0"),
    ("^0.x", "1.0.0"),
    ("*", "v1.2.3-foo"),
    ("*", "0.0.0-alpha"),
    ("^1.0.0", "2.0.0-rc1"),
    ("1 - 2", "2.0.0-pre"),
    ("1 - 2", "1.0.0-pre"),
    ("1.0 - 2", "1.0.0-pre"),
    ("1.2.3 - 2.3", "2.4.0"),
    ("1.1.x", "1.0.0-a"),
    ("1.1.x", "1.1.0-a"),
    ("1.1.x", "1.2.0-a"),
    ("1.x", "1.0.0-a"),
    ("1.x", "1.1.0-a"),
    ("1.x", "1.2.0-a"),
    (">=1.0.0 <1.1.0", "1.1.0"),
    (">=1.0.0 <1.1.0", "1.1.0-pre"),
    (">=1.0.0 <1.1.0-pre", "1.1.0-pre"),
    ("<*", "0.0.0"),
    (">*", "1.0.0"),
    (">=0.0.0-0", "1.0.0-alpha"),
    ("<x <* || >* 2.x", "2.0.0"),
]

EXCLUDE_EVEN_WITH_PRERELEASES = [
    ("2.x", "3.0.0-pre.0"),
    ("^1.0.0", "1.0.0-rc1"),
    ("^1.0.0", "2.0.0-rc1"),
    ("^1.2.3-rc2", "2.0.0"),
    ("1 - 2", "3.0.0-pre"),
    ("1.1.x", "1.2.0-a"),
    ("1.1.x", "1.0.0-a"),
    ("1.x", "0.0.0-a"),
    ("1.x", "2.0.0-a"),
    (">=1.0.0 <1.1.0", "1.1.0"),
    ("~1.2.3", "1.2.3-alpha"),
    ("^0.2.3", "0.2.3-alpha"),
    ("^0.0.3", "0.0.3-alpha"),
    ("^1.2.3", "1.2.3-alpha"),
    (">=0.0.0", "0.0.0-alpha"),
    ("1.0.0 - 2.0.0", "2.0.1-0"),
]

NORMALISED = [
    ("1.0.0 - 2.0.0", ">=1.0.0 <=2.0.0"),
    ("1 - 2", ">=1.0.0 <3.0.0-0"),
    ("1.0 - 2.0", ">=1.0.0 <2.1.0-0"),
    ("1.2 - 3.4.5", ">=1.2.0 <=3.4.5"),
    ("1.2.3 - 3.4", ">=1.2.3 <3.5.0-0"),
    ("1.2 - 3.4", ">=1.2.0 <3.5.0-0"),
    ("1.2.3-pre+asdf - 2.4.3-pre+asdf", ">=1.2.3-pre <=2.4.3-pre"),
    ("x - 1.0.0", "<=1.0.0"),
    ("1.x - x", ">=1.0.0"),
    ("0.0.0 - 1", "<2.0.0-0"),
    ("1.0.0", "1.0.0"),
    ("=1.0.0", "1.0.0"),
    ("v1.0.0", "1.0.0"),
    (">=*", "*"),
    ("", "*"),
    ("*", "*"),
    ("x", "*"),
    ("||", "*"),
    (">=0.0.0", "*"),
    (">=1.0.0", ">=1.0.0"),
    (">1.0.0", ">1.0.0"),
    ("<=2.0.0", "<=2.0.0"),
    ("<2.0.0", "<2.0.0"),
    (">= 1.0.0", ">=1.0.0"),
    (">=  1.0.0", ">=1.0.0"),
    ("0.1.20 || 1.2.4", "0.1.20||1.2.4"),
    (">=0.2.3 || <0.0.1", ">=0.2.3||<0.0.1"),
    ("2.x.x", ">=2.0.0 <3.0.0-0"),
    ("1.2.x", ">=1.2.0 <1.3.0-0"),
    ("1.2.x || 2.x", ">=1.2.0 <1.3.0-0||>=2.0.0 <3.0.0-0"),
    ("2.*.*", ">=2.0.0 <3.0.0-0"),
    ("1", ">=1.0.0 <2.0.0-0"),
    ("2.3", ">=2.3.0 <2.4.0-0"),
    ("~2.4", ">=2.4.0 <2.5.0-0"),
    ("~>3.2.1", ">=3.2.1 <3.3.0-0"),
    ("~1", ">=1.0.0 <2.0.0-0"),
    ("~>1", ">=1.0.0 <2.0.0-0"),
    ("~> 1", ">=1.0.0 <2.0.0-0"),
    ("~1.0", ">=1.0.0 <1.1.0-0"),
    ("~ 1.0", ">=1.0.0 <1.1.0-0"),
    ("~1.2.3", ">=1.2.3 <1.3.0-0"),
    ("~0.2.3", ">=0.2.3 <0.3.0-0"),
    ("~1.2.3-beta.2", ">=1.2.3-beta.2 <1.3.0-0"),
    ("~0.0.0", "<0.1.0-0"),
    ("^0", "<1.0.0-0"),
    ("^ 1", ">=1.0.0 <2.0.0-0"),
    ("^0.1", ">=0.1.0 <0.2.0-0"),
    ("^1.0", ">=1.0.0 <2.0.0-0"),
    ("^1.2", ">=1.2.0 <2.0.0-0"),
    ("^0.0.1", ">=0.0.1 <0.0.2-0"),
    ("^0.0.1-beta", ">=0.0.1-beta <0.0.2-0"),
    ("^0.1.2", ">=0.1.2 <0.2.0-0"),
    ("^1.2.3", ">=1.2.3 <2.0.0-0"),
    ("^1.2.3-beta.4", ">=1.2.3-beta.4 <2.0.0-0"),
    ("^1.2.3+build", ">=1.2.3 <2.0.0-0"),
    ("^0.2.3", ">=0.2.3 <0.3.0-0"),
    ("^0.0.3", ">=0.0.3 <0.0.4-0"),
    ("^0.0.x", "<0.1.0-0"),
    ("^0.0", "<0.1.0-0"),
    ("^0.x", "<1.0.0-0"),
    ("^1.x", ">=1.0.0 <2.0.0-0"),
    ("^0.0.0", "<0.0.1-0"),
    ("<1", "<1.0.0-0"),
    ("< 1", "<1.0.0-0"),
    (">=1", ">=1.0.0"),
    (">= 1", ">=1.0.0"),
    ("<1.2", "<1.2.0-0"),
    ("< 1.2", "<1.2.0-0"),
    (">1", ">=2.0.0"),
    (">1.2", ">=1.3.0"),
    ("<=1.2", "<1.3.0-0"),
    ("<=1", "<2.0.0-0"),
    ("=0.7.x", ">=0.7.0 <0.8.0-0"),
    ("<=0.7.x", "<0.8.0-0"),
    (">=0.7.x", ">=0.7.0"),
    (">X", "<0.0.0-0"),
    ("<X", "<0.0.0-0"),
    ("<x <* || >* 2.x", "<0.0.0-0"),
    (">x 2.x || * || <x", "*"),
    ("^ 1.2 ^ 1", ">=1.2.0 <2.0.0-0 >=1.0.0"),
    ("~1.2.1 >=1.2.3", ">=1.2.1 <1.3.0-0 >=1.2.3"),
    ("1.2.3 1.2.3", "1.2.3"),
    ("* >1.0.0", ">1.0.0"),
    ("<0.0.0-0 || 1.2.3", "1.2.3"),
    (">=1.x.x-alpha+build <2.x.x+build", ">=1.0.0 <2.0.0-0"),
    ("1.x.x-alpha+build || 2.x.x+build", ">=1.0.0 <2.0.0-0||>=2.0.0 <3.0.0-0"),
    ("4.17.0+" + "a" * 250 + "3", "4.17.0"),
]

COMPARISONS = [  # (greater, lesser)
    ("0.0.0", "0.0.0-foo"),
    ("0.0.1", "0.0.0"),
    ("1.0.0", "0.9.9"),
    ("0.10.0", "0.9.0"),
    ("0.99.0", "0.10.0"),
    ("2.0.0", "1.2.3"),
    ("v0.0.0", "0.0.0-foo"),
    ("v1.2.3", "1.2.2"),
    ("1.2.3", "v1.2.2"),
    ("1.2.3", "1.2.3-asdf"),
    ("1.2.3", "1.2.3-4"),
    ("1.2.3", "1.2.3-4-foo"),
    ("1.2.3-5-foo", "1.2.3-5"),
    ("1.2.3-5", "1.2.3-4"),
    ("1.2.3-5-foo", "1.2.3-5-Foo"),
    ("3.0.0", "2.7.2+asdf"),
    ("1.2.3-a.10", "1.2.3-a.5"),
    ("1.2.3-a.b", "1.2.3-a.5"),
    ("1.2.3-a.b", "1.2.3-a"),
    ("1.2.3-a.b.c.10.d.5", "1.2.3-a.b.c.5.d.100"),
    ("1.2.3-r2", "1.2.3-r100"),
    ("1.2.3-r100", "1.2.3-R2"),
    ("1.2.3-a-", "1.2.3-a"),
    ("1.2.3--", "1.2.3-999"),
    ("2.0.0-0", "1.999.999"),
]

SEMVER_11_CHAIN = [  # SemVer 2.0.0 §11, in increasing precedence
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
]

SAME_PRECEDENCE = [
    ("1.2.3", "v1.2.3"),
    ("1.2.3", "=1.2.3"),
    ("1.2.3", " 1.2.3 "),
    ("1.2.3-beta", "v1.2.3-beta"),
    ("1.2.3-beta+build", "1.2.3-beta+otherbuild"),
    ("1.2.3+build", "1.2.3+otherbuild"),
    ("1.2.3", "1.2.3+0.a-b"),
]

INVALID_VERSIONS = [
    "",
    "   ",
    "1.2",
    "1",
    "01.2.3",
    "1.02.3",
    "1.2.03",
    "1.2.3-01",
    "1.2.3-alpha.01",
    "1.2.3.4",
    "1.2.3-",
    "1.2.3+",
    "1.2.3-+",
    "1.2.3-a..b",
    "1.2.3+a..b",
    "1.2.3+a_b",
    "1.2.3-é",
    "NOT VALID",
    "Infinity.NaN.Infinity",
    "1.2.3 4",
    "v1.2.3 extra",
    "-1.2.3",
    "1.-2.3",
    "vv1.2.3",
    "v 1.2.3",
    "=v1.2.3",
    "V1.2.3",
    "1.2.x",
    "*",
    "1.2.3beta",
    "1.2.3.beta",
    "9007199254740992.0.0",
    "1.9007199254740992.0",
    "1.2.3-9007199254740992",
    "1.2.3-" + "a" * 251,
    "\uff11.2.3",
    "1.2.\u0663",
    "1.2.3\x00",
]

INVALID_RANGES = [
    ">=>1",
    "^^1",
    "~~1",
    "1.2.3 - ",
    "- 1.2.3",
    "1.2.3 -2",
    "1.2.3- 2",
    "1.2.3 - 2.3.4 - 3",
    "1 - 2 <3",
    "blerg",
    "git+https://user:password0123@github.com/foo",
    ">01.02.03",
    "~1.2.3beta",
    "1.2.3-01",
    "01",
    "1.02",
    ">=09090",
    ">=09090-0",
    "1.2.3.4",
    "~1.2.3.4",
    "1.2.3+",
    "|||",
    "1.2.3 ||| 2",
    ">= 1.2.3 <",
    "~",
    "^",
    "<",
    "=",
    ">=1.2.3 foo",
    "==1.2.3",
    ">==1.2.3",
    "vv1.2",
    "1.x.y",
    "*1.2.3",
    "1.2.3*",
    "1.2-beta",
    "9007199254740992",
    "9007199254740991.x",
    "<=9007199254740991",
    "^9007199254740991.0.0",
    "~1.9007199254740991",
    "1.2.3-" + "a" * 251,
    "1.x.5",
    "1.*.5",
    "1.x.5 || 2.x",
    "x.1",
    "x.1.2",
    "x.x.1",
    "~1.x.3",
    "^x.1",
    "1.x.2 - 2",
    "1.2.3" + " " * 1015 + "1.2.4",
    "||".join(["1"] * 65),
    " ".join(["1"] * 33),
]


def _param(range_text: str, version: str) -> object:
    return pytest.param(range_text, version, id=f"[{range_text}] {version}")


def _matches(range_text: str, version: str, include_prerelease: bool = False) -> bool:
    return VersionRange.parse(range_text).matches(
        Version.parse(version), include_prerelease=include_prerelease
    )


@pytest.mark.parametrize(("range_text", "version"), [_param(*case) for case in INCLUDE])
def test_range_includes(range_text: str, version: str) -> None:
    assert _matches(range_text, version)
    assert _matches(range_text, version, include_prerelease=True)


@pytest.mark.parametrize(
    ("range_text", "version"), [_param(*case) for case in INCLUDE_WITH_PRERELEASES]
)
def test_range_includes_only_with_prereleases(range_text: str, version: str) -> None:
    assert _matches(range_text, version, include_prerelease=True)
    assert not _matches(range_text, version)


@pytest.mark.parametrize(("range_text", "version"), [_param(*case) for case in EXCLUDE])
def test_range_excludes(range_text: str, version: str) -> None:
    assert not _matches(range_text, version)


@pytest.mark.parametrize(
    ("range_text", "version"), [_param(*case) for case in EXCLUDE_EVEN_WITH_PRERELEASES]
)
def test_range_excludes_even_with_prereleases(range_text: str, version: str) -> None:
    assert not _matches(range_text, version)
    assert not _matches(range_text, version, include_prerelease=True)


@pytest.mark.parametrize(
    ("range_text", "expected"), [pytest.param(r, n, id=f"[{r}]") for r, n in NORMALISED]
)
def test_range_normalises_like_node_semver(range_text: str, expected: str) -> None:
    parsed = VersionRange.parse(range_text)
    assert str(parsed) == expected
    assert VersionRange.parse(expected).alternatives == parsed.alternatives


@pytest.mark.parametrize(
    ("greater", "lesser"), [pytest.param(g, s, id=f"{g} > {s}") for g, s in COMPARISONS]
)
def test_version_precedence(greater: str, lesser: str) -> None:
    high, low = Version.parse(greater), Version.parse(lesser)
    assert high > low and high >= low and low < high and low <= high
    assert not (high < low or high <= low or low > high or low >= high)
    assert high.key() > low.key() and high != low


def test_semver_11_example_chain_is_increasing() -> None:
    versions = [Version.parse(text) for text in SEMVER_11_CHAIN]
    assert all(a < b for a, b in itertools.pairwise(versions))
    assert sorted(reversed(versions)) == versions
    assert sorted(reversed(versions), key=Version.key) == versions


@pytest.mark.parametrize(
    ("a", "b"), [pytest.param(a, b, id=f"{a}~{b}") for a, b in SAME_PRECEDENCE]
)
def test_same_precedence(a: str, b: str) -> None:
    first, second = Version.parse(a), Version.parse(b)
    assert first.key() == second.key()
    assert first <= second and first >= second and not first < second and not first > second
    assert Comparator("=", first).test(second)


def test_build_metadata_distinguishes_equality_but_not_precedence() -> None:
    a, b = Version.parse("1.2.3+a"), Version.parse("1.2.3+b")
    assert a != b and len({a, b}) == 2 and a.key() == b.key()
    assert a == Version.parse("v1.2.3+a") and hash(a) == hash(Version(1, 2, 3, (), ("a",)))


@pytest.mark.parametrize("text", [pytest.param(t, id=repr(t)[:40]) for t in INVALID_VERSIONS])
def test_invalid_versions(text: str) -> None:
    with pytest.raises(VersionError):
        Version.parse(text)


@pytest.mark.parametrize("text", [pytest.param(t, id=repr(t)[:40]) for t in INVALID_RANGES])
def test_invalid_ranges(text: str) -> None:
    with pytest.raises(VersionError):
        VersionRange.parse(text)


def test_version_parse_details() -> None:
    v = Version.parse("  v1.2.3-alpha.1.-x.0a+build.007  ")
    assert (v.major, v.minor, v.patch) == (1, 2, 3)
    assert v.prerelease == ("alpha", 1, "-x", "0a") and v.build == ("build", "007")
    assert v.is_prerelease and not Version.parse("1.2.3+b").is_prerelease
    assert str(v) == "1.2.3-alpha.1.-x.0a+build.007"
    assert str(Version.parse(f"{MAX_SAFE}.0.0-{MAX_SAFE}")) == f"{MAX_SAFE}.0.0-{MAX_SAFE}"
    assert isinstance(VersionError("x"), ValueError)


def test_error_messages_say_what_and_show_the_text_truncated() -> None:
    with pytest.raises(VersionError, match="leading zero") as caught:
        Version.parse("01.2.3")
    assert "'01.2.3'" in str(caught.value)
    with pytest.raises(VersionError, match=r"\.\.\.") as caught:
        VersionRange.parse("blerg " * 100)
    assert len(str(caught.value)) < 300
    with pytest.raises(VersionError, match="uppercase"):
        ModelName.parse("Pub/model")


@pytest.mark.parametrize(
    "fields",
    [
        (-1, 0, 0),
        (True, 0, 0),
        (1.0, 0, 0),
        (MAX_SAFE + 1, 0, 0),
        (1, 2, 3, ("01",)),
        (1, 2, 3, ("1",)),
        (1, 2, 3, ("",)),
        (1, 2, 3, (MAX_SAFE + 1,)),
        (1, 2, 3, (-1,)),
        (1, 2, 3, (), ("",)),
        (1, 2, 3, (), ("a.b",)),
        (1, 2, 3, (), (1,)),
    ],
    ids=repr,
)
def test_version_fields_are_validated(fields: tuple[object, ...]) -> None:
    with pytest.raises(VersionError):
        Version(*fields)  # type: ignore[arg-type]


def test_comparator() -> None:
    v = Version.parse("1.2.3")
    assert Comparator(">=", v).test(Version.parse("1.2.3+x"))
    assert not Comparator(">", v).test(Version.parse("1.2.3"))
    assert Comparator("<", v).test(Version.parse("1.2.3-rc.1"))
    assert str(Comparator("=", v)) == "1.2.3" and str(Comparator("<=", v)) == "<=1.2.3"
    with pytest.raises(VersionError):
        Comparator("~", v)


def test_range_keeps_stripped_text_and_structure() -> None:
    r = VersionRange.parse("  ^1.2 || 3.x  ")
    assert r.text == "^1.2 || 3.x"
    assert len(r.alternatives) == 2 and all(len(s) == 2 for s in r.alternatives)
    assert r.alternatives[0][0] == Comparator(">=", Version(1, 2, 0))
    assert r.alternatives[0][1] == Comparator("<", Version(2, 0, 0, (0,)))


def test_limits_are_inclusive() -> None:
    assert VersionRange.parse("||".join(["1"] * 64))
    assert VersionRange.parse(" ".join([">=1"] * 32))
    assert VersionRange.parse("||".join(["1.2.3-" + "a" * 244] * 4))
    assert Version.parse("1.2.3-" + "a" * 250)
    assert VersionRange.parse("1.2.3 - 1.2.9007199254740991").matches(
        Version(1, 2, MAX_SAFE), include_prerelease=True
    )


def test_best_picks_the_highest_match_first_of_equals() -> None:
    versions = [Version.parse(t) for t in ["1.2.3", "1.9.0+a", "1.9.0+b", "2.0.0", "1.9.1-rc.1"]]
    r = VersionRange.parse("^1.2")
    best = r.best(versions)
    assert best is not None and best.build == ("a",)
    pre = r.best(versions, include_prerelease=True)
    assert pre == Version.parse("1.9.1-rc.1")
    assert VersionRange.parse(">3").best(versions) is None
    assert r.best([]) is None


# --- model names --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["pub/model", "a/b", "0/9", "my-pub/model.v2_small", "a" * 64 + "/" + "b" * 64]
)
def test_model_names(text: str) -> None:
    name = ModelName.parse(text)
    assert str(name) == text and (name.publisher, name.model) == tuple(text.split("/"))


@pytest.mark.parametrize(
    "text",
    [
        "Pub/model",
        "pub/Model",
        "pub/mod el",
        " pub/model",
        "../x",
        "./x",
        "pub/..",
        "pub/.hidden",
        "pub/-x",
        "pub/_x",
        "a/b/c",
        "pubmodel",
        "/model",
        "pub/",
        "/",
        "",
        "a" * 65 + "/b",
        "a/" + "b" * 65,
        "pub/mödel",
        "pub/model@1",
        "pub\\model",
    ],
)
def test_invalid_model_names(text: str) -> None:
    with pytest.raises(VersionError):
        ModelName.parse(text)


def test_model_name_fields_are_validated() -> None:
    with pytest.raises(VersionError, match="empty"):
        ModelName("", "x")


@pytest.mark.parametrize(
    ("text", "name", "normalised"),
    [
        ("pub/model@^1.2", "pub/model", ">=1.2.0 <2.0.0-0"),
        ("pub/model@1.x", "pub/model", ">=1.0.0 <2.0.0-0"),
        ("pub/model", "pub/model", "*"),
        ("pub/model@>=1.3 <2", "pub/model", ">=1.3.0 <2.0.0-0"),
        ("  pub/model@~1.2.3 || 2  ", "pub/model", ">=1.2.3 <1.3.0-0||>=2.0.0 <3.0.0-0"),
        ("pub/model@*", "pub/model", "*"),
    ],
)
def test_model_specs(text: str, name: str, normalised: str) -> None:
    spec = ModelSpec.parse(text)
    assert str(spec.name) == name and str(spec.range) == normalised
    assert ModelSpec.parse(str(spec)) == spec


def test_model_spec_without_range_matches_every_release() -> None:
    spec = ModelSpec.parse("pub/model")
    assert str(spec) == "pub/model"
    for text in ["0.0.0", "1.2.3", f"{MAX_SAFE}.{MAX_SAFE}.{MAX_SAFE}", "3.0.0+b"]:
        assert spec.range.matches(Version.parse(text))
    assert not spec.range.matches(Version.parse("1.0.0-rc.1"))
    assert spec.range.matches(Version.parse("1.0.0-rc.1"), include_prerelease=True)


@pytest.mark.parametrize(
    "text", ["pub/model@", "pub/model@ ", "Pub/model@1", "pub/model@blerg", "pub@1", "@1", ""]
)
def test_invalid_model_specs(text: str) -> None:
    with pytest.raises(VersionError):
        ModelSpec.parse(text)


# --- properties ---------------------------------------------------------------------

Parts = tuple[int, int, int, tuple[int | str, ...], tuple[str, ...]]

NUMBERS = st.one_of(st.integers(0, 3), st.integers(0, MAX_SAFE))
ALNUM_IDS = st.text(alphabet="abAZ-09", min_size=1, max_size=4).filter(lambda s: not s.isdigit())
PRE_IDS = st.one_of(st.integers(0, 12), st.integers(0, MAX_SAFE), ALNUM_IDS)
BUILD_IDS = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=5)


def version_parts(numbers: st.SearchStrategy[int] = NUMBERS) -> st.SearchStrategy[Parts]:
    return st.tuples(
        numbers,
        numbers,
        numbers,
        st.lists(PRE_IDS, max_size=4).map(tuple),
        st.lists(BUILD_IDS, max_size=3).map(tuple),
    )


def text_of(parts: Parts) -> str:
    major, minor, patch, pre, build = parts
    text = f"{major}.{minor}.{patch}"
    text += "-" + ".".join(str(i) for i in pre) if pre else ""
    return text + ("+" + ".".join(build) if build else "")


def reference_cmp(a: Parts, b: Parts) -> int:
    """SemVer 2.0.0 §11, step by step."""
    for x, y in zip(a[:3], b[:3], strict=True):
        if x != y:
            return -1 if x < y else 1
    pa, pb = a[3], b[3]
    if not pa or not pb:
        return int(not pa) - int(not pb)  # a release outranks a prerelease
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        if isinstance(x, int) and isinstance(y, int):
            return -1 if x < y else 1
        if isinstance(x, int) or isinstance(y, int):
            return -1 if isinstance(x, int) else 1  # numeric below alphanumeric
        return -1 if str(x) < str(y) else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


@settings(max_examples=300)
@given(version_parts())
def test_version_text_round_trips(parts: Parts) -> None:
    v = Version.parse(text_of(parts))
    assert (v.major, v.minor, v.patch, v.prerelease, v.build) == parts
    assert Version.parse(str(v)) == v and str(v) == text_of(parts)


SMALL_PARTS = version_parts(st.integers(0, 2))


@settings(max_examples=150)
@given(st.lists(st.one_of(SMALL_PARTS, version_parts()), min_size=2, max_size=12))
def test_ordering_is_semver_precedence(parts: list[Parts]) -> None:
    by_text = {text_of(p): p for p in parts}
    versions = [Version.parse(text) for text in by_text]
    reference = sorted(
        versions,
        key=functools.cmp_to_key(lambda a, b: reference_cmp(by_text[str(a)], by_text[str(b)])),
    )
    assert sorted(versions) == reference
    assert sorted(versions, key=Version.key) == reference
    for a in versions:
        for b in versions:
            expected = reference_cmp(by_text[str(a)], by_text[str(b)])
            assert (a < b, a <= b, a > b, a >= b) == (
                expected < 0,
                expected <= 0,
                expected > 0,
                expected >= 0,
            )
            assert (a.key() == b.key()) == (expected == 0)


# Range texts built from the grammar: primitive, tilde, caret, X-ranges, hyphens.
X_PART = st.sampled_from(["x", "X", "*"])
PRE_TEXT = st.sampled_from(["0", "alpha", "beta.1", "rc.2", "1"])


@st.composite
def partial_texts(draw: st.DrawFn, prerelease: bool = True) -> str:
    numbers = draw(st.lists(st.integers(0, 3).map(str), min_size=1, max_size=3))
    wild_from = draw(st.integers(0, len(numbers)))  # no number may follow an X
    parts = numbers[:wild_from] + [draw(X_PART) for _ in numbers[wild_from:]]
    text = draw(st.sampled_from(["", "", "v"])) + ".".join(parts)
    if len(parts) == 3 and prerelease and draw(st.booleans()):
        text += "-" + draw(PRE_TEXT)
    if len(parts) == 3 and draw(st.integers(0, 4)) == 0:
        text += "+build.1"
    return text


def range_texts(prerelease: bool = True) -> st.SearchStrategy[str]:
    partial = partial_texts(prerelease)
    comparator = st.builds(
        lambda op, space, text: op + space + text,
        st.sampled_from(["", "=", "<", "<=", ">", ">=", "~", "~>", "^"]),
        st.sampled_from(["", "", " "]),
        partial,
    )
    sets = st.one_of(
        st.lists(comparator, min_size=1, max_size=3).map(" ".join),
        st.builds(lambda a, b: f"{a} - {b}", partial, partial),
        st.just(""),
    )
    return st.builds(
        lambda alternatives, sep: sep.join(alternatives),
        st.lists(sets, min_size=1, max_size=3),
        st.sampled_from(["||", " || "]),
    )


RANGE_TEXTS = range_texts()
GRID = [
    Version(major, minor, patch, pre)
    for major in range(4)
    for minor in range(4)
    for patch in range(4)
    for pre in [(), (0,), ("alpha",), ("beta", 1)]
]
RELEASES = [v for v in GRID if not v.prerelease]
PRERELEASES = [v for v in GRID if v.prerelease]


@settings(max_examples=200)
@given(RANGE_TEXTS)
def test_normalised_range_matches_the_same_versions(text: str) -> None:
    r = VersionRange.parse(text)
    again = VersionRange.parse(str(r))
    assert again.alternatives == r.alternatives and str(again) == str(r)
    assert [r.matches(v) for v in GRID] == [again.matches(v) for v in GRID]


def _next_breaking(major: int, minor: int, patch: int, caret: bool) -> tuple[int, int, int]:
    if not caret:
        return (major, minor + 1, 0)
    if major:
        return (major + 1, 0, 0)
    return (0, minor + 1, 0) if minor else (0, 0, patch + 1)


@settings(max_examples=150)
@given(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)), st.booleans())
def test_caret_and_tilde_against_a_reference(base: tuple[int, int, int], caret: bool) -> None:
    r = VersionRange.parse(("^" if caret else "~") + ".".join(map(str, base)))
    upper = _next_breaking(*base, caret=caret)
    for v in RELEASES:
        triple = (v.major, v.minor, v.patch)
        assert r.matches(v) == (base <= triple < upper), v
        assert r.matches(v, include_prerelease=True) == (base <= triple < upper), v


@settings(max_examples=150)
@given(RANGE_TEXTS, st.lists(st.sampled_from(GRID), max_size=12), st.booleans())
def test_best_is_the_max_of_the_matches(text: str, versions: list[Version], pre: bool) -> None:
    r = VersionRange.parse(text)
    matching = [v for v in versions if r.matches(v, include_prerelease=pre)]
    assert r.best(versions, include_prerelease=pre) == max(matching, key=Version.key, default=None)


@settings(max_examples=150)
@given(RANGE_TEXTS)
def test_prereleases_need_an_opt_in(text: str) -> None:
    r = VersionRange.parse(text)
    comparators = [c for s in r.alternatives for c in s]
    for v in PRERELEASES:
        if r.matches(v):
            assert any(
                c.version.prerelease and c.version.key()[:3] == v.key()[:3] for c in comparators
            )
            assert r.matches(v, include_prerelease=True)  # include only widens a range
    for v in RELEASES:
        assert r.matches(v) == r.matches(v, include_prerelease=True)


@settings(max_examples=100)
@given(range_texts(prerelease=False))
def test_ranges_without_prerelease_never_match_prereleases(text: str) -> None:
    r = VersionRange.parse(text)
    assert not any(r.matches(v) for v in PRERELEASES)


SEMVERISH = st.text(alphabet="0123456789.-+xX*^~<>=| vab\t", max_size=40)
PARSERS: list[Callable[[str], object]] = [
    Version.parse,
    VersionRange.parse,
    ModelName.parse,
    ModelSpec.parse,
]


@settings(max_examples=300)
@given(st.one_of(st.text(), SEMVERISH, RANGE_TEXTS.map(lambda t: t + "!")))
def test_parsers_only_raise_version_error(text: str) -> None:
    for parse in PARSERS:
        try:
            result = parse(text)
        except VersionError:
            continue
        if isinstance(result, VersionRange):
            for v in GRID[:16]:
                result.matches(v, include_prerelease=True)
                result.matches(v)


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=12))
def test_long_inputs_are_refused_quickly(seed: str) -> None:
    texts = [(seed * (10_000 // len(seed) + 1))[:10_000]]
    texts += ["1" * 10_000, "1.2.3 " * 1700, "||" * 5_000, "1.2.3-" + "a." * 5_000]
    texts += [" " * 9_990 + "1.2.3", "x " * 5_000, "^" * 10_000, "a/" + "b" * 10_000]
    for text in texts:
        for parse in PARSERS:
            start = time.perf_counter()
            with contextlib.suppress(VersionError):
                parse(text)
            assert time.perf_counter() - start < 0.05
