# Stage: probe (rules are added by the stage's issue)
