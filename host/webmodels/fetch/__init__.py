"""Downloads: resumable, verified transfers (``transfer``), their pure resume rules
(``resume``), and jobs shared between requests and host processes (``jobs``)."""
