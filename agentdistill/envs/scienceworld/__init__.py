"""ScienceWorld (Wang et al., 2022) over the real simulator from PyPI ``scienceworld``.

Install: ``pip install 'agentdistill[scienceworld]'`` (PyPI ``scienceworld`` 1.2.x, which
ships the simulator jar, and ``py4j``); needs a Java 17 runtime (``java`` on PATH).
"""
