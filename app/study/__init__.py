"""Study: the use cases that turn a trainee's studying into confirmed time and money."""

from flask import Blueprint

bp = Blueprint("study", __name__)

from app.study import api, jobs  # noqa: E402, F401  (routes and the job handler register)
