"""Release packaging of the extension (`scripts/package`): the release zip, the
Firefox XPI, a CRX3 signed with the extension's RSA key and Chrome's update manifest."""
