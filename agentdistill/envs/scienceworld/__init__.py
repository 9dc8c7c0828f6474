"""ScienceWorld (Wang et al., 2022) over the real simulator from PyPI ``scienceworld``."""
