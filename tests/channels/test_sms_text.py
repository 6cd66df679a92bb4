from channels.base import MessageKind
from channels.sms_text import compose, count_parts, is_unsubscribe, split_parts


def test_signature_hint_and_parts() -> None:
    sms = compose("明日有暴雨，请注意防范。", "衢州发布")
    assert sms.text == "【衢州发布】明日有暴雨，请注意防范。回T退订"
    assert sms.parts == 1
    staff = compose("请于 9:00 到会。", "【衢州发布】", MessageKind.STAFF)
    assert staff.text == "【衢州发布】请于 9:00 到会。"
    emergency = compose("紧急撤离", "衢州发布", MessageKind.EMERGENCY)
    assert "退订" not in emergency.text


def test_part_counting_boundaries() -> None:
    assert count_parts("字" * 70) == 1
    assert count_parts("字" * 71) == 2
    assert count_parts("字" * 134) == 2
    assert count_parts("字" * 135) == 3
    parts = split_parts("字" * 135)
    assert [len(p) for p in parts] == [67, 67, 1]


def test_unsubscribe_words() -> None:
    for reply in ("T", "t", "TD", " td ", "退订", "取消"):
        assert is_unsubscribe(reply)
    for reply in ("好的", "TDX", "谢谢"):
        assert not is_unsubscribe(reply)
