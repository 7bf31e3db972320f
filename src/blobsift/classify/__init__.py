"""Classifiers of candidate crops with the scikit-learn estimator contract."""
