"""The taxi trip-duration training flow and its synthetic data.

`flows.taxi.synth` writes green taxi trip files with the real TLC schema;
`flows.taxi.training:main_flow` is the flow (entrypoint of the `taxi-training`
deployment). Nothing is imported here, so that importing the package stays
cheap: pandas, XGBoost and MLflow load only when a flow runs. They come with
the `taxi` extra; `flows.taxi.extra` tells whether it is installed.
"""
