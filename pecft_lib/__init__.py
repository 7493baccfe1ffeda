"""pecft_lib: parameter-efficient continual fine-tuning, the library behind the PECFT book.

Sub-packages: ``benchmarks`` (Avalanche scenarios), ``methods`` (strategies), ``evaluation`` (accuracy
matrix, metrics, records, plots). ``repro.setup`` is the first call of every chapter.
"""

__version__ = "0.1.0"
