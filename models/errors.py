"""Failures the converter reports, each with a stable code that the Node.js side forwards."""


class ConvertError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message
