"""The `send_notification_sms` job: a notification's text message, sent after its commit.

The job row is written in the transaction that raised the notification, so a message is never
sent for a fact that was rolled back, and never lost when the provider is down: a send that
fails (`SmsUnavailable`) fails the attempt, and the job system tries again (JOB_MAX_ATTEMPTS).
Safe to run again: a notification already sent is not sent twice (`sms_sent_at`).

Template texts to have approved by the provider (SMS_ALIYUN_TEMPLATES, ``kind=SMS_...``):

- ``notice_identity_flag``:
  您在职训通登记的人脸需由审核员核对，详情请登录职训通查看消息。
- ``notice_subsidy_decided`` ``{course, result}``:
  您参加的培训“${course}”补贴审核结果：${result}，详情请登录职训通查看。
- ``notice_appeal_decided`` ``{course, result}``:
  您对培训“${course}”的申诉已处理，结果：${result}，详情请登录职训通查看。
- ``notice_certificate_issued`` ``{course, number}``:
  您参加的培训“${course}”已颁发证书，编号${number}。
- ``notice_certificate_revoked`` ``{course, number}``:
  您的证书${number}（${course}）已被撤销，原因请登录职训通查看。
"""

from __future__ import annotations

import logging

from flask import current_app
from flask_babel import force_locale

from app.db import utcnow
from app.extensions import db
from app.identity.models import User
from app.jobs.service import Progress, handler
from app.notifications import service
from app.notifications.models import Notification

log = logging.getLogger(__name__)


@handler(service.SEND_SMS)
def send_notification_sms(notification_id: int, report: Progress) -> None:
    from app.identity import sms

    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.sms_sent_at is not None:
        return
    user = db.session.get(User, notification.user_id)
    kind = service.sms_kind(notification.kind)
    if user is None or not user.phone or not user.active or not sms.enabled(kind):
        return
    # Texts go out in the bureau's language: the reader's choice is a browser's, not a phone's.
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        params = service.sms_params(notification)
    sms.send(user.phone, kind, params)  # raises on failure: the attempt fails and is retried
    notification.sms_sent_at = utcnow()
    db.session.commit()
    report(100.0)
