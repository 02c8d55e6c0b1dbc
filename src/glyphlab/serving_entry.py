"""The code MLflow runs to build the pyfunc when it loads a model logged by :mod:`glyphlab.serving`.

Logged as "models from code": the model is rebuilt by running this file, never unpickled.
"""
import mlflow

from glyphlab.serving import GlyphModel

mlflow.models.set_model(GlyphModel())
