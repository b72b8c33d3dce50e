from hearthnet.cli.app import node_label


def test_a_node_without_a_name_shows_its_short_id_once():
    assert node_label("ed25519:AAAA-BBBB", "ed25519:AAAA-BBBB") == "ed25519:AAAA-BBBB"
    assert node_label("ed25519:AAAA-BBBB", "ed25519:AAAA-BBBB", "hearth") == "ed25519:AAAA-BBBB  (hearth)"


def test_a_named_node_shows_name_and_profile():
    assert node_label("ed25519:AAAA-BBBB", "kitchen", "spark") == "ed25519:AAAA-BBBB  (kitchen, spark)"
    assert node_label("ed25519:AAAA-BBBB", "", "spark") == "ed25519:AAAA-BBBB  (spark)"
