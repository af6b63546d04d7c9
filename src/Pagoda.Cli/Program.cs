return Pagoda.Cli.PagodaCli.Run(args, Console.Out, Console.Error, terminal: !Console.IsErrorRedirected);
