"""The scoring stage's error: a model, data or setting that cannot be scored, named."""


class ScoreError(ValueError):
    pass
