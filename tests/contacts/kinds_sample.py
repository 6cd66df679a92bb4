"""A second hand-written directory (25 fictional people) for the kinds of query of issue 15."""

from __future__ import annotations

HEADER = "name,department,position,office_phone,mobile,short_number,email,region,visibility,external_id"

ROWS = [
    "王建军,衢州市应急管理局,局长,0570-3030001,13600000001,,,市级,public,k01",
    "何平,衢州市应急管理局/应急指挥中心,主任,0570-3030002,13600000002,,,市级,public,k02",
    "单晓曾,衢州市应急管理局,科员,0570-3030003,13600000003,,,市级,public,k03",
    "曾乐,衢州市应急管理局/办公室,科员,0570-3030004,13600000004,,,市级,public,k04",
    "曾月,衢州市应急管理局/办公室,科员,0570-3030005,13600000005,,,市级,public,k05",
    "周建国,衢州市经济和信息化局,局长,0570-3040001,13600000006,,,市级,public,k06",
    "吴海燕,衢州市经济和信息化局,副局长,0570-3040002,13600000007,,,市级,public,k07",
    "郑晓东,衢州市经济和信息化局/办公室,科员,0570-3040003,13600000008,,,市级,public,k08",
    "孔明,衢州市经济和信息化局/办公室,办公室主任,0570-3040004,13600000009,,,市级,public,k09",
    "卫红,衢州市医疗保障局,局长,0570-3050001,13600000010,,,市级,staff,k10",
    "褚卫国,衢州市医疗保障局,副局长,0570-3050002,13600000011,,,市级,public,k11",
    "蒋涛,衢州市医疗保障局/基金监管科,科员,0570-3050003,13600000012,,,市级,public,k12",
    "施华,衢州市医疗保障局/办公室,办公室主任,0570-3050004,13600000013,,,市级,public,k13",
    "杨帆,衢州市生态环境局,局长,0570-3060001,13600000014,,,市级,public,k14",
    "朱琳,衢州市生态环境局/办公室,办公室主任,0570-3060002,13600000015,,,市级,public,k15",
    "秦岭,衢州市人民政府办公室/秘书科,科长,0570-3010001,13600000016,,,市级,public,k16",
    "尤佳,衢州市人民政府办公室/秘书科,科员,0570-3010002,13600000017,,,市级,public,k17",
    "许诺,衢州市人民政府办公室/综合科,科长,0570-3010003,13600000018,,,市级,public,k18",
    "冯丽华,江山市文化广电旅游局,局长,0570-4020001,13600000019,,,江山市,public,k19",
    "陈思远,江山市文化广电旅游局/旅游科,科长,0570-4020002,13600000020,,,江山市,public,k20",
    "王建军,江山市应急管理局,副局长,0570-4030001,13600000021,,,江山市,public,k21",
    "吕强,江山市应急管理局,局长,0570-4030002,13600000022,,,江山市,public,k22",
    "沈一鸣,柯城区自然资源和规划局,局长,0570-3110001,13600000023,,,柯城区,public,k23",
    "韩梅,柯城区自然资源和规划局/规划科,科长,0570-3110002,13600000024,,,柯城区,public,k24",
    "王建军,柯城区自然资源和规划局/规划科,科员,0570-3110003,13600000025,,,柯城区,public,k25",
]


def csv_text() -> str:
    """The sample as CSV text."""
    return "\n".join([HEADER, *ROWS]) + "\n"


# (kind, query, expected top for a public caller, for a privileged caller, expected region of the top
# when names repeat or None). A top of None: nothing found.
RELEVANCE = [
    # Short names derived from the department's jieba words: first characters + the unit.
    ("abbreviation", "经信局", "周建国", "周建国", None),  # 经(济) 信(息化) 局; a leader first
    ("abbreviation", "市经信局", "周建国", "周建国", None),
    ("abbreviation", "文广旅局", "冯丽华", "冯丽华", None),  # 文(化) 广(电) 旅(游) 局
    ("abbreviation", "江山文广旅局", "冯丽华", "冯丽华", None),
    ("abbreviation", "医保局", "褚卫国", "卫红", None),  # 卫红 (局长) is staff-only
    ("abbreviation", "自规局", "沈一鸣", "沈一鸣", None),
    ("abbreviation", "柯城自规局", "沈一鸣", "沈一鸣", None),
    ("abbreviation", "应指中心", "何平", "何平", None),  # 应(急) 指(挥) 中心
    ("abbreviation", "基金监管科", "蒋涛", "蒋涛", None),
    ("alias", "环保局", "杨帆", "杨帆", None),  # irregular: from the alias table
    ("abbreviation", "经信局 副局长", "吴海燕", "吴海燕", None),
    # Department and position typed as one word.
    ("glued", "秘书科科长", "秦岭", "秦岭", None),  # not 许诺, 科长 of another section
    ("glued", "规划科科长", "韩梅", "韩梅", None),
    ("glued", "医保局副局长", "褚卫国", "褚卫国", None),
    ("glued", "经信局办公室主任", "孔明", "孔明", None),
    ("glued", "环保局办公室主任", "朱琳", "朱琳", None),
    # No exact hit: fewer terms (the least selective dropped), then homophones.
    ("fewer_terms", "秦岭 局长", "秦岭", "秦岭", None),
    ("fewer_terms", "经信局 韩梅", "韩梅", "韩梅", None),
    ("homophones", "规化科", "韩梅", "韩梅", None),  # 规划科 sounds the same
    ("homophones", "江山文广旅局 科张", "陈思远", "陈思远", None),  # 科长 sounds like 科张
    ("homophones", "应机指挥中心", "何平", "何平", None),
    # Polyphonic characters in given names: every reading, the usual one ranking first.
    ("polyphonic", "shanxiaozeng", "单晓曾", "单晓曾", None),
    ("polyphonic", "shanxiaoceng", "单晓曾", "单晓曾", None),
    ("polyphonic", "zengle", "曾乐", "曾乐", None),
    ("polyphonic", "zengyue", "曾月", "曾月", None),  # 曾月 reads yue usually; 曾乐 only rarely
    ("polyphonic", "曾yue", "曾月", "曾月", None),
    # Namesakes and ranks.
    ("namesakes", "王建军", "王建军", "王建军", "市级"),  # the 局长 of three namesakes
    ("namesakes", "江山 王建军", "王建军", "王建军", "江山市"),
    ("namesakes", "王建军 副局长", "王建军", "王建军", "江山市"),
    ("namesakes", "王建军 科员", "王建军", "王建军", "柯城区"),
    ("namesakes", "规划科 王建军", "王建军", "王建军", "柯城区"),
    ("ranks", "应急局 局长", "王建军", "王建军", "市级"),  # 局长 before 副局长; city before county
    ("ranks", "江山应急局 局长", "吕强", "吕强", None),  # 吕强 局长 before 王建军 副局长
    ("ranks", "医保局 局长", "褚卫国", "卫红", None),
    ("ranks", "应急局", "王建军", "王建军", "市级"),  # only the department: its leader first
]

# Queries whose answers stay the same when the people hide among generated contacts (the generated
# directory has none of these departments, given names or readings; it does have 应急局, 自规局 ...).
AMONG_GENERATED = {
    "经信局",
    "市经信局",
    "医保局",
    "基金监管科",
    "经信局 副局长",
    "秘书科科长",
    "医保局副局长",
    "经信局办公室主任",
    "shanxiaozeng",
    "shanxiaoceng",
    "zengle",
    "秦岭 局长",
}
