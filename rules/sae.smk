# Stage: sae (rules are added by the stage's issue)
