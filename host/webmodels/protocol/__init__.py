"""The native-messaging wire protocol, without IO (as h11): bytes in, messages out."""
