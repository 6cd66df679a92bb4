"""A realistic, entirely fictional directory of 衢州: names drawn by real surname frequencies, no real persons."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

from sqlmodel import Session, select

from contacts.importer import FIELDS
from contacts.models import Contact, Department
from contacts.service import ensure_department, get_or_create_region

# Approximate shares (per mille) of the most common surnames in mainland China (public census summaries),
# plus the polyphonic surnames the search must read right (曾 zeng, 单 shan, 解 xie ...).
SURNAMES = (
    "王71 李70 张68 刘54 陈45 杨31 黄22 赵22 吴20 周19 徐15 孙15 马12 朱12 胡11 郭11 何10 高10 林10 罗9 "
    "郑8 梁8 谢7 宋6 唐6 许6 韩6 冯6 邓5 曹5 彭5 曾5 肖5 田5 董4 袁4 潘4 于4 蒋4 蔡4 余4 杜4 叶4 程4 "
    "苏3 魏3 吕3 丁3 任3 沈3 姚3 卢3 姜3 崔3 钟3 谭3 陆3 汪3 范3 金3 石3 廖3 贾2 夏2 韦2 付2 方2 白2 "
    "邹2 孟2 熊2 秦2 邱2 江2 尹2 薛2 闫2 段2 雷2 侯2 龙2 史2 陶2 黎2 贺2 顾2 毛2 郝2 龚2 邵2 万2 钱2 "
    "严2 覃1 武1 戴1 莫1 孔1 向1 汤1 单1 解1 仇1 查1 欧阳1 诸葛1"
)
GIVEN = (
    "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀 霞 平 刚 桂 英 华 玉 萍 红 建 文 辉 力 鹏 斌 宇 浩 "
    "凯 健 俊 帆 帅 旭 宁 龙 林 欢 佳 阳 晨 琳 雪 倩 婷 颖 慧 莉 鑫 波 峰 亮 飞 晓 燕 海 新 志 国 春 东 立 博 "
    "思 雨 欣 怡 梓 子 涵 轩 睿 泽 铭 嘉 诗 雅 一 晗 瑞 天 成 锦 蕾 琦 昊 哲 悦 清 云 兰 梅 荣 光 庆 永 德 "
    "晶 颖 振 家 凤 桐 昕 源 航 语 曦 彤 舒 然 菲 可 馨"
).split()
REGIONS = ("市级", "柯城区", "衢江区", "龙游县", "江山市", "常山县", "开化县")
# Office-number prefixes by region (0570 area code), loosely following the city's numbering.
PHONE_PREFIX = {
    "市级": "30",
    "柯城区": "31",
    "衢江区": "35",
    "龙游县": "74",
    "江山市": "40",
    "常山县": "50",
    "开化县": "60",
}
# (name, aliases for the city level, aliases for a county, sub-departments)
AGENCIES = (
    ("人民政府办公室", ["市府办", "市政府办"], ["政府办"], ["秘书一处", "秘书二处", "综合处", "督查处", "总值班室"]),
    (
        "应急管理局",
        ["市应急局", "应急局"],
        ["应急局"],
        ["办公室", "应急指挥中心", "风险监测和综合减灾科", "安全生产监管科"],
    ),
    ("公安局", ["市公安局"], ["公安局"], ["办公室", "指挥中心", "治安管理支队", "交通警察支队"]),
    ("教育局", ["市教育局"], ["教育局"], ["办公室", "基础教育科", "人事科", "计划财务科"]),
    ("卫生健康委员会", ["市卫健委", "卫健委"], ["卫健局"], ["办公室", "医政医管科", "疾病预防控制科", "基层卫生科"]),
    ("财政局", ["市财政局"], ["财政局"], ["办公室", "预算科", "国库科", "综合科"]),
    ("自然资源和规划局", ["市资规局", "资规局"], ["资规局"], ["办公室", "规划科", "耕地保护科", "执法监察科"]),
    ("生态环境局", ["市生态环境局", "环保局"], ["环保局"], ["办公室", "环境监测站", "大气环境科"]),
    ("住房和城乡建设局", ["市住建局", "住建局"], ["住建局"], ["办公室", "建筑业管理科", "城建科", "房产科"]),
    ("交通运输局", ["市交通局", "交通局"], ["交通局"], ["办公室", "运输管理科", "公路科"]),
    ("水利局", ["市水利局"], ["水利局"], ["办公室", "水旱灾害防御科", "河湖管理科"]),
    ("农业农村局", ["市农业农村局", "农业局"], ["农业局"], ["办公室", "种植业科", "畜牧兽医科"]),
    ("民政局", ["市民政局"], ["民政局"], ["办公室", "社会救助科", "养老服务科"]),
    (
        "人力资源和社会保障局",
        ["市人社局", "人社局"],
        ["人社局"],
        ["办公室", "就业促进科", "社会保险科", "劳动监察大队"],
    ),
    ("市场监督管理局", ["市市场监管局", "市场监管局"], ["市场监管局"], ["办公室", "食品安全科", "价格监督检查科"]),
    ("文化广电旅游局", ["市文广旅游局", "文旅局"], ["文旅局"], ["办公室", "旅游科", "文化市场科"]),
    ("大数据发展管理局", ["市大数据局", "大数据局"], ["大数据局"], ["办公室", "数据资源科", "平台建设科"]),
    ("信访局", ["市信访局"], ["信访局"], ["办公室", "来访接待科", "督查督办科"]),
)
HEAD_POSITIONS = ("局长", "副局长", "副局长", "党组书记", "党组成员", "总工程师", "调研员")
OFFICE_POSITIONS = ("主任", "副主任", "办公室主任", "秘书", "值班员", "文书")
SECTION_POSITIONS = (
    "科长",
    "副科长",
    "科长",
    "副科长",
    "一级主任科员",
    "四级主任科员",
    "一级科员",
    "二级科员",
    "科员",
    "科员",
)


def _weighted_surnames() -> tuple[list[str], list[int]]:
    names, weights = [], []
    for item in SURNAMES.split():
        digits = "".join(c for c in item if c.isdigit())
        names.append(item[: len(item) - len(digits)])
        weights.append(int(digits))
    return names, weights


def _agency_name(region: str, base: str) -> str:
    if region == "市级":
        return f"衢州市{base}"
    if base == "公安局" and region.endswith("区"):
        return f"衢州市公安局{region}分局"
    return f"{region}{base}"


def department_plan() -> list[tuple[str, str, list[str]]]:
    """(path, region, aliases) for every department of the fictional city, tree order."""
    plan: list[tuple[str, str, list[str]]] = []
    for region in REGIONS:
        short = region[:-1] if region != "市级" else "市"
        for base, city_aliases, county_aliases, subs in AGENCIES:
            top = _agency_name(region, base)
            aliases = city_aliases if region == "市级" else [short + a for a in county_aliases] + county_aliases
            plan.append((top, region, aliases))
            plan.extend((f"{top}/{sub}", region, []) for sub in subs)
    return plan


def generate(count: int, seed: int = 20261125) -> Iterator[dict[str, str]]:
    """`count` fictional contacts as import rows (English field names)."""
    rng = random.Random(seed)
    surnames, weights = _weighted_surnames()
    plan = department_plan()
    leaves = [(path, region) for path, region, _a in plan if "/" in path]
    tops = [(path, region) for path, region, _a in plan if "/" not in path]
    used_numbers: set[str] = set()
    for n in range(count):
        if rng.random() < 0.12:
            path, region = rng.choice(tops)
            position = rng.choice(HEAD_POSITIONS)
        else:
            path, region = rng.choice(leaves)
            leaf = path.rsplit("/", 1)[1]
            position = rng.choice(OFFICE_POSITIONS if "办公室" in leaf or "值班" in leaf else SECTION_POSITIONS)
        name = rng.choices(surnames, weights)[0] + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2, 2))))
        mobile = ""
        while not mobile or mobile in used_numbers:
            mobile = (
                rng.choice(("13", "15", "18", "17", "19"))
                + str(rng.randint(3, 9))
                + f"{rng.randint(0, 99_999_999):08d}"
            )
        used_numbers.add(mobile)
        yield {
            "name": name,
            "department": path,
            "position": position,
            "office_phone": f"0570-{PHONE_PREFIX[region]}{rng.randint(0, 99_999):05d}",
            "mobile": mobile,
            "short_number": f"6{rng.randint(0, 99_999):05d}" if rng.random() < 0.7 else "",
            "email": f"u{n + 1:06d}@qz.example.cn" if rng.random() < 0.5 else "",
            "region": region,
            "visibility": "staff" if rng.random() < 0.15 else "public",
            "external_id": f"demo-{n + 1:06d}",
            "dingtalk_userid": f"qzdemo{n + 1:06d}",  # every demo person is on 浙政钉
        }


def write_csv(path: Path, count: int, seed: int = 20261125) -> int:
    """Write a demo directory as UTF-8 CSV (with BOM, so spreadsheet programs read it right)."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(FIELDS))
        writer.writeheader()
        written = 0
        for row in generate(count, seed):
            writer.writerow(row)
            written += 1
    return written


def load_demo(session: Session, count: int, seed: int = 20261125) -> int:
    """Insert the demo directory in bulk (fast start-up); does nothing when contacts exist already."""
    if session.exec(select(Contact.id).limit(1)).first() is not None:
        return 0
    departments: dict[str, Department] = {}
    for path, region, aliases in department_plan():
        dept = ensure_department(session, path, get_or_create_region(session, region))
        dept.aliases = aliases
        session.add(dept)
        departments[path] = dept
    regions = {r: get_or_create_region(session, r) for r in REGIONS}
    session.flush()
    rows = []
    for row in generate(count, seed):
        region_row = regions[row["region"]]
        rows.append(
            Contact(
                name=row["name"],
                department_id=int(departments[row["department"]].id or 0),
                position=row["position"],
                office_phone=row["office_phone"],
                mobile=row["mobile"],
                short_number=row["short_number"],
                email=row["email"],
                region_id=region_row.id if region_row else None,
                visibility=row["visibility"],
                external_id=row["external_id"],
                dingtalk_userid=row["dingtalk_userid"],
            )
        )
    session.add_all(rows)
    session.commit()
    return len(rows)
