return XNet.Cli.XNetApp.Run(args);
