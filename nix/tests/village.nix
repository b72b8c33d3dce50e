# Three boxes on one VLAN with no route out: the anchor creates the community and serves
# SmolLM2; the hearth and the spark join with invites the test carries; an llm.chat from the
# spark (its own model switched off) is served by the anchor; a market post made on the hearth
# reaches the spark.
let
  c = import ./common.nix;
  hosts = { anchor = { profile = "anchor"; }; hearth = { profile = "hearth"; }; spark = { profile = "spark"; }; };
in
{
  name = "hearthnet-village";
  nodes = {
    anchor = c.node { name = "anchor"; profile = "anchor"; inherit hosts; address = c.anchorAddress; };
    hearth = c.node { name = "hearth"; profile = "hearth"; inherit hosts; address = "192.168.1.2"; };
    spark = c.node {
      name = "spark";
      profile = "spark";
      inherit hosts;
      address = "192.168.1.3";
      extra.site.hosts.spark.services.llm = false; # its questions go to the anchor
    };
  };

  testScript = c.prelude + ''
    start_all()
    anchor.wait_for_unit("hearthnet-ready.service")
    join(anchor, hearth)
    join(anchor, spark)

    spark_answer = answer(spark)
    assert spark_answer["text"] == answer(anchor)["text"], spark_answer
    trace = json.loads(hn(spark, "trace --json"))
    anchor_id = json.loads(hn(anchor, "id --json"))["node_id"]
    assert any(t["capability"] == "llm.chat" and t["to_node"] == anchor_id for t in trace), trace

    post = json.loads(hn(hearth, "market post offer 'Spare seed potatoes' --json"))
    spark.wait_until_succeeds(f"{HN} market list --json | grep -q {post['post_id']}", timeout=120)
  '';
}
