"""digest: daily newsletter digests for sectioned news sites.

Data flows one way: feeds -> store -> selection -> composition -> sending.
"""

__version__ = "0.1.0"
