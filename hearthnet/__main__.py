from hearthnet.cli import main

main()
