"""Time-series tables for forecasting: CSV -> sorted, checked series -> scaled features -> windows.

The honesty rules, enforced here and nowhere else:

* rows are sorted by time within each series; duplicate timestamps are refused;
* the split is chronological (one cut-off date for all series, so no series leaks the
  future of another): training windows end with their *targets* before ``val_start``;
  validation and test windows have their forecast origin inside their period;
* scalers (scikit-learn ``StandardScaler``) and category lists are fitted on the training
  rows only and stored as plain numbers / strings in the checkpoint's data config;
* a window never crosses two series or a gap longer than ``max_gap`` periods;
* labels are always the *observed* values: imputed values (``--missing ffill|interpolate``)
  only ever feed inputs, and a window whose label is missing is dropped;
* an event label of the window ending at ``t`` is the event at ``t + horizon``; inputs are
  rows ``<= t`` only, so the future value of the event's source column never enters.

Frequencies: ``D`` (daily), ``B`` (business days: a trading calendar is regular, and steps
are counted in weekdays, so a market holiday is a step of 2, within the default
``max_gap`` of 3 for ``B``), ``W``, ``M`` (monthly, steps counted in calendar months),
``h`` (hourly), or the median spacing for anything else.

Transforms of the targets (``levels``, ``diff``, ``logret``): inputs are the transformed
series; the model's output for step ``k`` is ``f(y[t+k])`` (levels) or the cumulative change
``f(y[t+k]) - f(y[t])`` (diff: ``f`` = identity, logret: ``f`` = log), divided by the
training scale; :meth:`TSData.to_units` maps any output (mean or quantile) back to the
original units, monotonically, so intervals map too.

The modules, in the order data flows through them: ``spec.py`` (column roles and options),
``table.py`` (CSV -> tidy frame), ``calendar.py`` (frequencies, gaps, calendar features),
``fit.py`` (``fit`` / ``transform`` / ``fit_transform``: the state is the checkpoint's data
config) and ``windows.py`` (:class:`TSData`, window ends, the chronological split of windows).
Everything is re-exported here: ``from rnnkit.data import timeseries as ts``.
"""
from .calendar import calendar_features, default_max_gap, fmt_time, future_times, infer_freq, steps_between
from .fit import build, fit, fit_transform, transform
from .spec import NO, PRESETS, YES, Spec, check_spec, parse_event, preset_defaults, resolve_spec, split_list
from .table import read_table, target_columns, target_names, tidy_frame
from .windows import Series, TSData, last_window, make_windows, naive_mae, rollout_inputs, window_ends

__all__ = [
    "NO", "PRESETS", "YES", "Series", "Spec", "TSData", "build", "calendar_features", "check_spec",
    "default_max_gap", "fit", "fit_transform", "fmt_time", "future_times", "infer_freq", "last_window",
    "make_windows", "naive_mae", "parse_event", "rollout_inputs", "preset_defaults", "read_table", "resolve_spec", "split_list", "steps_between",
    "target_columns", "target_names", "tidy_frame", "transform", "window_ends",
]
