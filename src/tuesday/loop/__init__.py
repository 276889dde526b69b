"""The loop stage: the daily job that keeps a model in production, and its rehearsal.

- :mod:`tuesday.loop.daily`: one tick per model and day (monitor the recent windows,
  decide by the model's policy, retrain, gate, materialize, alert), recorded ticks, the
  scheduler that runs them;
- :mod:`tuesday.loop.recent`: monitoring over the policy's recent windows, and the
  policy a model runs with;
- :mod:`tuesday.loop.replay`: the replay driver that lives the loop day by day over
  history with a virtual clock;
- :mod:`tuesday.loop.shocks`: the changes a replay applies to the history first;
- :mod:`tuesday.loop.timeline`: the replay's timeline (data and its HTML page).

Import the module you need (``from tuesday.loop import daily``); this package exports
nothing itself.
"""
