"""The demo launcher: the whole pipeline on one machine, on the emulators (DESIGN §7).

The only part of the product that imports `emulators/`.
"""
