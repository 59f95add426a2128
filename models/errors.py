"""The exception types for bad input; the CLI turns them into one line and exit status 2."""


class EffscaleError(Exception):
    """Bad input or an unusable file: the message is shown to the user as is, on one line."""


class SettingError(EffscaleError):
    """A bad value of one named setting (a `TrainConfig` field, say): "val_size must be >= 1, got 0".
    The CLI names the command-line option instead when the command has one: "--val-size must be >= 1, got 0"."""

    def __init__(self, setting: str, requirement: str, value: object) -> None:
        self.setting, self.requirement, self.value = setting, requirement, value
        super().__init__(self.naming(setting))

    def __reduce__(self) -> tuple[type, tuple[str, str, object]]:
        """Pickled with its parts, so that it crosses process boundaries (multiprocessing, Ray) intact."""
        return SettingError, (self.setting, self.requirement, self.value)

    def naming(self, name: str) -> str:
        """The message with the setting called `name`."""
        return f"{name} {self.requirement}, got {self.value!r}"
