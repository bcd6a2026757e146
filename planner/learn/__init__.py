"""The learning side: features from compspec and cluster attributes, the catalog of known points, the
estimators, the prediction table, ranking, recommend and evaluate. Pure: it takes data and returns data.

Imports `core` only; the store, model files and plots are `edges`.
"""
