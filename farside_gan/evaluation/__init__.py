"""The evaluation stage: scores against the truth, figures, the report's page."""
