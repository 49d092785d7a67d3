"""The platform's formats, pure and without I/O: signatures, AES crypto, XML bodies, typed
messages and the replies they get."""
