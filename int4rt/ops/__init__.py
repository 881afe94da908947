"""Every integer operator of docs/ARITHMETIC.md, one folder per section.

``<op>/reference.py`` is the readable NumPy form of its section (the specification's
executable twin) and ``<op>/numba.py`` the fast kernel with the same names and signatures;
``registry`` lists them. ``formats`` (§1, §2) and ``profiles`` (§11) are shared by all.
"""
