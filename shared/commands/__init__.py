"""What users can do (batches, synthesis, evaluations, their own directions), for the REST API and the portal alike."""
