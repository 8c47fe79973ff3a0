from pod_tasks.tasks import *  # noqa: F401,F403  (every pod-tasks doit task)
