"""The report stage: what a person reads to judge a model version.

- :mod:`tuesday.report.evaluation` builds the evaluation report of one model version
  (a JSON-able dict, one builder per section) and writes it as JSON and HTML;
- :mod:`tuesday.report.evaluation_html` renders that dict as one self-contained page.

Charts come from :mod:`tuesday.charts`. The replay timeline page is written by the loop
(:mod:`tuesday.loop.timeline`), which sits below this stage.
"""
