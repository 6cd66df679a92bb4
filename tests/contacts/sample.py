"""A small hand-written directory used by the directory tests (fictional people)."""

from __future__ import annotations

HEADER_EN = "name,department,position,office_phone,mobile,short_number,email,region,visibility,external_id"
HEADER_ZH = "姓名,部门,职务,办公电话,手机,短号,邮箱,地区,公开范围,编号"

ROWS = [
    "王芳,衢州市人民政府办公室,办公室主任,0570-3011111,13800005555,,wangfang@qz.example.cn,市级,staff,p07",
    "张伟,衢州市人民政府办公室/秘书一处,科长,0570-3012345,13912346688,661234,zw@qz.example.cn,市级,public,p01",
    "赵敏,衢州市应急管理局,局长,0570-3036688,13700001111,,,市级,public,p10",
    "张伟明,衢州市应急管理局/应急指挥中心,科员,0570-3023456,13700002222,,,市级,public,p02",
    "曾小明,江山市应急管理局,局长,0570-4011111,13700003333,,,江山市,public,p04",
    "单丽,江山市应急管理局/办公室,办公室主任,0570-4012222,13700004444,,,江山市,public,p05",
    "李强,江山市应急管理局/办公室,值班员,0570-4013333,13700005555,667788,,江山市,public,p08",
    "章薇,柯城区教育局/人事科,科员,0570-3101111,13700006666,,,柯城区,public,p03",
    "解放,柯城区教育局/人事科,科长,0570-3102222,13700007777,,,柯城区,public,p06",
    "欧阳娜娜,柯城区教育局,局长,0570-3103333,13700008888,,,柯城区,public,p09",
]


def csv_text(chinese: bool = False) -> str:
    """The sample as CSV text."""
    return "\n".join([HEADER_ZH if chinese else HEADER_EN, *ROWS]) + "\n"


# query → (expected top hit for a public caller, for a privileged caller); None: nothing found.
RELEVANCE = [
    ("张伟", "张伟", "张伟"),  # exact name beats the prefix (张伟明) and the homophone (章薇)
    ("張偉", "张伟", "张伟"),  # traditional characters
    ("伟明", "张伟明", "张伟明"),  # part of the name
    ("张伟明", "张伟明", "张伟明"),
    ("zhangwei", "张伟", "张伟"),  # full pinyin
    ("zhang wei", "张伟", "张伟"),  # pinyin with a space
    ("zw", "张伟", "张伟"),  # initials
    ("张w", "张伟", "张伟"),  # mixed
    ("zwm", "张伟明", "张伟明"),
    ("zengxiaoming", "曾小明", "曾小明"),  # polyphonic surname 曾 zeng
    ("zxm", "曾小明", "曾小明"),
    ("shanli", "单丽", "单丽"),  # 单 shan
    ("xiefang", "解放", "解放"),  # 解 xie
    ("ouyangnana", "欧阳娜娜", "欧阳娜娜"),  # compound surname
    ("欧阳n", "欧阳娜娜", "欧阳娜娜"),
    ("章威", "章薇", "章薇"),  # homophone: 章薇 sounds the same and shares the surname
    ("市府办", "张伟", "王芳"),  # alias; 王芳 is staff-only
    ("江山应急局", "曾小明", "曾小明"),  # derived short name
    ("应急指挥中心", "张伟明", "张伟明"),
    ("江山 应急 局长", "曾小明", "曾小明"),  # combination
    ("江山应急局长", "曾小明", "曾小明"),  # the same without spaces (jieba with the directory's words)
    ("局长", "赵敏", "赵敏"),  # position; ties by department order
    ("办公室主任", "单丽", "王芳"),
    ("值班员", "李强", "李强"),
    ("2345", "张伟", "张伟"),  # office phone tail
    ("0570-4011111", "曾小明", "曾小明"),  # whole office number
    ("6688", "赵敏", "赵敏"),  # 张伟's mobile ends in 6688 too (privileged only); the 局长 ranks first
    ("667788", None, "李强"),  # short number: staff only
    ("13700005555", None, "李强"),  # mobile: staff only
]
