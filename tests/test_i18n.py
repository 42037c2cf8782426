"""The server's sentences and the CLI's labels in Chinese; unknown text stays as written."""

import re

import pytest

from zhisuan.i18n import label, lang_of, translate


@pytest.mark.parametrize(("english", "chinese"), [
    ("placed on alpha/gpu-a100 (score 83.3)", "已放置到 alpha/gpu-a100（得分 83.3）"),
    ("exit 3", "退出码 3"),
    ("cancelled by admin ops", "由 admin ops 取消"),
    ("no accepted pool has room for the gang now", "目前没有可用资源池能容纳整组作业"),
    ("reserved for zhisuan job j-1 (it starts in 1h05m)", "已为智算作业 j-1 预留（1小时05分后开始）"),
    ("alpha's own load: slurm job 41 (root); zhisuan jobs of other tenants",
     "alpha 自身负载：slurm job 41 (root)；其他租户的智算作业"),
    ("a/p over b/p by 25.0 points: cheaper by ¥40.00 and greener by 0.480 kgCO2; data locality favoured b/p by "
     "100 points but weighs less",
     "a/p 优于 b/p（高 25.0 分）：便宜 ¥40.00，少排放 0.480 kgCO2；数据本地性更有利于 b/p（高 100 分），但权重较低"),
    ("tenant lab holds 1.5 of its 2-device quota", "租户 lab 占用 1.5 张卡，配额 2 张"),
    ("something new", "something new"),
])
def test_server_sentences_in_chinese(english, chinese):
    assert translate(english, "zh-CN") == chinese
    assert translate(english, "en") == english


def test_the_language_comes_from_accept_language_or_the_environment():
    assert lang_of("zh-CN,zh;q=0.9,en;q=0.8") == "zh-CN" and lang_of("zh_CN.UTF-8") == "zh-CN"
    assert lang_of("en-US,en") == "en" and lang_of(None) == "en"
    assert label("{id}: {state}", "zh-CN") == "{id}：{state}" and label("unknown label", "zh-CN") == "unknown label"


def test_the_chinese_labels_keep_their_fields():
    from zhisuan.i18n.catalog import LABELS_ZH

    for english, chinese in LABELS_ZH.items():
        assert set(re.findall(r"\{\w+\}", english)) == set(re.findall(r"\{\w+\}", chinese)), english


def test_centers_get_their_chinese_names_in_chinese_sentences():
    names = {"shanghai": "上海", "qingyang": "庆阳"}
    assert translate("placed on shanghai/h800 (score 80.8)", "zh-CN", names) == "已放置到 上海/h800（得分 80.8）"
    assert translate("center qingyang down: no answer", "zh-CN", names) == "中心 庆阳 故障：no answer"
    assert translate("placed on shanghai/h800 (score 80.8)", "en", names) == "placed on shanghai/h800 (score 80.8)"


def test_funds_and_drain_sentences_read_in_chinese():
    from zhisuan.i18n import translate

    held = ("held: project acme is out of funds (prepaid balance ¥10.00, of which ¥5.00 held by its queued and "
            "running jobs: ¥5.00 free and monthly budget ¥100.00: spent ¥1.00, held ¥5.00, ¥94.00 left, running "
            "jobs ¥3.00 beyond their holds), a top-up or a larger budget releases its jobs")
    zh = translate(held, "zh-CN")
    assert zh.startswith("暂停：项目 acme 资金不足") and "充值或提高预算后恢复" in zh
    assert not [w for w in zh.replace("acme", "").split() if w.isascii() and w.isalpha()], zh
    drained = translate("here's own load: node 0 of gpu drained by its operator: fan", "zh-CN")
    assert drained == "here 自身负载：节点 0（gpu）已被中心运维排空：fan"
    refused = translate("funds: the job is expected to cost up to ¥3.00, and project acme has prepaid balance ¥1.00, "
                        "of which ¥0.00 held by its queued and running jobs: ¥1.00 free", "zh-CN")
    assert refused.startswith("资金不足：此作业预计最多花费 ¥3.00") and "可用" in refused
