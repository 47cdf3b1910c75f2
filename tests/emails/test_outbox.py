import email
from email import policy

from django.core.mail import EmailMultiAlternatives, get_connection


def test_outbox_backend_writes_one_eml_per_message(tmp_path):
    connection = get_connection("emails.outbox.OutboxBackend", outbox_dir=tmp_path)
    messages = []
    for n in range(3):
        message = EmailMultiAlternatives(f"Hello {n}", "text part", "from@example.org", [f"to{n}@example.org"])
        message.attach_alternative("<p>html part</p>", "text/html")
        messages.append(message)
    assert connection.send_messages(messages) == 3
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 3
    parsed = [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert sorted(m["To"] for m in parsed) == ["to0@example.org", "to1@example.org", "to2@example.org"]
    assert all(m.get_body(("html",)).get_content().strip() == "<p>html part</p>" for m in parsed)
    assert not list(tmp_path.glob(".*.tmp"))
